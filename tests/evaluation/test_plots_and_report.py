"""Tests of the evaluation plots and the Markdown model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.calibration import reliability_curve, softmax
from pigeonhole.evaluation.metrics import multi_label_metrics, single_label_metrics
from pigeonhole.evaluation.plots import (
    confusion_matrix_plot,
    reliability_plot,
    training_curves_plot,
)
from pigeonhole.evaluation.report import model_card

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) > 100


@pytest.mark.parametrize(
    "classes",
    [2, 10, 30, pytest.param(50, marks=pytest.mark.slow)],
    ids=lambda c: f"{c}-classes",
)
def test_confusion_matrix_plot_is_a_png(tmp_path: Path, classes: int) -> None:
    rng = np.random.default_rng(classes)
    matrix = rng.integers(0, 20, size=(classes, classes))
    matrix[0] = 0  # a class with no test image must not divide by zero

    path = confusion_matrix_plot(
        matrix, [f"class {i}" for i in range(classes)], tmp_path / "out" / "cm.png"
    )

    assert path == tmp_path / "out" / "cm.png"
    assert_png(path)


def test_confusion_matrix_plot_rejects_non_square(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"must be square .* got shape \(2, 3\)"):
        confusion_matrix_plot(np.zeros((2, 3)), ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(ValidationError, match=r"got 3 class_names for 2"):
        confusion_matrix_plot(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "cm.png")


@pytest.mark.parametrize("with_after", [True, False], ids=["before-after", "before"])
def test_reliability_plot_is_a_png(tmp_path: Path, with_after: bool) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(300, 4))
    labels = rng.integers(0, 4, size=300)
    before = reliability_curve(softmax(logits), labels)
    after = reliability_curve(softmax(logits, 4.0), labels) if with_after else None

    path = reliability_plot(before, after, tmp_path / "reliability.png", 0.21, None)

    assert_png(path)


@pytest.mark.parametrize(
    "keys",
    [
        ("train_loss", "valid_loss", "valid_metric"),
        ("train_loss",),
        ("valid_metric",),
    ],
    ids=["all", "train-loss-only", "metric-only"],
)
def test_training_curves_plot_draws_what_is_present(
    tmp_path: Path, keys: tuple[str, ...]
) -> None:
    history = [
        {"epoch": epoch, **{key: 1.0 / (epoch + 1) for key in keys}}
        for epoch in range(5, 0, -1)
    ]

    path = training_curves_plot(history, tmp_path / "curves.png")

    assert_png(path)


@pytest.mark.parametrize(
    ("history", "match"),
    [
        ([], r"history is empty"),
        ([{"train_loss": 1.0}], r"row 0 has no 'epoch' key; got keys \['train_loss'\]"),
        ([{"epoch": 1, "lr": 0.1}], r"history has none of \['train_loss'"),
    ],
    ids=["empty", "no-epoch", "nothing-to-plot"],
)
def test_training_curves_plot_rejects_bad_history(
    tmp_path: Path, history: list[dict[str, float]], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        training_curves_plot(history, tmp_path / "curves.png")


def weak_class_metrics() -> dict[str, Any]:
    """Three classes; ``fox`` is mostly predicted as ``dog``."""
    labels = np.array([0] * 12 + [1] * 12 + [2] * 6)
    predicted = labels.copy()
    predicted[24:28] = 1
    probabilities = np.full((30, 3), 0.1)
    probabilities[np.arange(30), predicted] = 0.8
    return single_label_metrics(labels, probabilities, ["cat", "dog", "fox"]).to_dict()


def full_metadata() -> dict[str, Any]:
    return {
        "model_id": "model-42",
        "project": "garden birds",
        "project_type": "single-label",
        "class_names": ["cat", "dog", "fox"],
        "backbone": "resnet18",
        "training_mode": "linear probe",
        "dataset_version_id": 7,
        "manifest_hash": "sha256:abc123",
        "recipe": {
            "preprocessing": {"size": 224, "resize": "shorter side"},
            "augmentation": "flip, colour jitter",
        },
        "split_counts": {"train": 300, "valid": 60, "test": 30},
        "train_class_counts": {"cat": 150, "dog": 138, "fox": 12},
        "test_metrics": weak_class_metrics(),
        "calibration": {"ece_before": 0.123, "ece_after": 0.0714, "temperature": 1.8},
        "rejection": {"threshold": 0.62, "coverage": 0.4, "accuracy": 0.97},
    }


def test_model_card_holds_the_key_numbers() -> None:
    card = model_card(full_metadata())

    assert card.startswith("# Model card: model-42\n")
    for expected in (
        "- Backbone: resnet18",
        "- Dataset version: `7`",
        "`sha256:abc123`",
        "- Preprocessing: size=224, resize=shorter side",
        "| test | 30 |",
        "- Accuracy: 0.867",
        "| fox | 1.000 | 0.333 | 0.500 | 6 |",
        "| class | precision | recall | F1 | support |",
        "- ECE: 0.123 before, 0.071 after",
        "- Temperature: 1.800",
        "- Threshold (top-1 confidence): 0.620",
        "- Coverage: 40.0% of images answered",
    ):
        assert expected in card


def test_model_card_lists_weaknesses_from_the_numbers() -> None:
    card = model_card(full_metadata())

    weaknesses = card.split("## Known weaknesses")[1]
    assert "fox: F1 0.500, well below the macro average 0.786." in weaknesses
    assert "cat:" not in weaknesses
    assert "Fewer than 20 training images: fox (12)." in weaknesses
    assert "ECE 0.071 is above 0.05" in weaknesses
    assert "test split has only 30 images" in weaknesses
    assert "answers only 40.0% of images" in weaknesses


def test_model_card_of_a_multi_label_model_names_unmeasured_classes() -> None:
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]] * 20)
    probabilities = np.where(truth == 1, 0.8, 0.2)
    metrics = multi_label_metrics(truth, probabilities, [0.5] * 3, ["a", "b", "c|d"])

    card = model_card({"model_id": "m", "test_metrics": metrics.to_dict()})

    assert "- Micro F1: 1.000" in card
    assert "| c\\|d | 0.000 | 0.000 | 0.000 | 0 | - | 0.500 |" in card
    assert "No test image has c\\|d, so it is not measured." in card


def test_model_card_skips_missing_keys() -> None:
    card = model_card({})

    assert card.splitlines()[0] == "# Model card: unnamed model"
    assert "## Test metrics" not in card
    assert "None found by the automatic checks" in card

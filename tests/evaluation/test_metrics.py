"""Tests of the evaluation metrics, checked against scikit-learn on random data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.metrics import (
    multi_label_metrics,
    ood_auroc,
    rejection_metrics,
    single_label_metrics,
)

SEEDS = [0, 1, 2, 3]


def names(count: int) -> list[str]:
    return [f"class_{index}" for index in range(count)]


def single_label_data(
    seed: int, classes: int, images: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=images)
    logits = rng.normal(size=(images, classes))
    logits[np.arange(images), labels] += 1.0  # better than chance, still many errors
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities


def multi_label_data(
    seed: int, classes: int = 6, images: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = (rng.random((images, classes)) < 0.3).astype(int)
    truth[:, -1] = 0  # one class with no positive image
    noise = rng.normal(scale=0.25, size=(images, classes))
    probabilities = np.clip(0.3 + 0.35 * truth + noise, 0, 1).round(2)  # with ties
    return truth, probabilities


@pytest.mark.parametrize("classes", [2, 5, 8, 12], ids=lambda c: f"{c}-classes")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_single_label_metrics_match_sklearn(seed: int, classes: int) -> None:
    labels, probabilities = single_label_data(seed, classes)
    predicted = probabilities.argmax(axis=1)
    every = list(range(classes))

    metrics = single_label_metrics(labels, probabilities, names(classes))

    assert metrics.count == len(labels)
    assert metrics.accuracy == pytest.approx(accuracy_score(labels, predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=every, zero_division=0
    )
    assert [entry.precision for entry in metrics.per_class] == pytest.approx(precision)
    assert [entry.recall for entry in metrics.per_class] == pytest.approx(recall)
    assert [entry.f1 for entry in metrics.per_class] == pytest.approx(f1)
    assert [entry.support for entry in metrics.per_class] == support.tolist()
    macro = precision_recall_fscore_support(
        labels, predicted, labels=every, average="macro", zero_division=0
    )
    assert (metrics.macro_precision, metrics.macro_recall, metrics.macro_f1) == (
        pytest.approx(macro[:3])
    )
    expected_matrix = confusion_matrix(labels, predicted, labels=every)
    assert np.array_equal(metrics.confusion_matrix, expected_matrix)
    if classes > 5:
        expected_top5 = top_k_accuracy_score(labels, probabilities, k=5, labels=every)
        assert metrics.top5_accuracy == pytest.approx(expected_top5)
    else:
        assert metrics.top5_accuracy is None


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_single_label_macro_skips_classes_missing_from_y_true(seed: int) -> None:
    labels, probabilities = single_label_data(seed, classes=6)
    labels[labels == 4] = 0  # class 4 has no test image but is still predicted
    predicted = probabilities.argmax(axis=1)
    present = sorted(set(labels.tolist()))

    metrics = single_label_metrics(labels, probabilities, names(6))

    macro = precision_recall_fscore_support(
        labels, predicted, labels=present, average="macro", zero_division=0
    )
    assert metrics.macro_f1 == pytest.approx(macro[2])
    assert metrics.per_class[4].support == 0
    assert metrics.per_class[4].precision == 0.0


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_multi_label_metrics_match_sklearn(seed: int) -> None:
    truth, probabilities = multi_label_data(seed)
    thresholds = np.random.default_rng(seed).uniform(0.35, 0.65, size=6)
    predicted = (probabilities >= thresholds).astype(int)
    present = [c for c in range(6) if truth[:, c].any()]

    metrics = multi_label_metrics(truth, probabilities, thresholds, names(6))

    per_class = precision_recall_fscore_support(
        truth, predicted, labels=list(range(6)), zero_division=0
    )
    assert [entry.precision for entry in metrics.per_class] == pytest.approx(
        per_class[0]
    )
    assert [entry.recall for entry in metrics.per_class] == pytest.approx(per_class[1])
    assert [entry.f1 for entry in metrics.per_class] == pytest.approx(per_class[2])
    assert [entry.support for entry in metrics.per_class] == per_class[3].tolist()
    micro = precision_recall_fscore_support(
        truth, predicted, average="micro", zero_division=0
    )
    assert (metrics.micro_precision, metrics.micro_recall, metrics.micro_f1) == (
        pytest.approx(micro[:3])
    )
    macro = precision_recall_fscore_support(
        truth, predicted, labels=present, average="macro", zero_division=0
    )
    assert metrics.macro_f1 == pytest.approx(macro[2])
    assert metrics.exact_match_ratio == pytest.approx(accuracy_score(truth, predicted))
    assert metrics.thresholds == pytest.approx(thresholds)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_average_precision_matches_sklearn_with_ties(seed: int) -> None:
    truth, probabilities = multi_label_data(seed)

    metrics = multi_label_metrics(truth, probabilities, np.full(6, 0.5), names(6))

    expected = [
        average_precision_score(truth[:, c], probabilities[:, c]) for c in range(5)
    ]
    assert [entry.average_precision for entry in metrics.per_class[:5]] == (
        pytest.approx(expected)
    )
    assert metrics.per_class[5].average_precision is None
    assert metrics.classes_without_positives == ("class_5",)
    assert metrics.mean_average_precision == pytest.approx(np.mean(expected))


def test_multi_label_with_no_positive_at_all_has_no_means() -> None:
    metrics = multi_label_metrics(
        np.zeros((3, 2)), np.full((3, 2), 0.2), [0.5, 0.5], ["a", "b"]
    )

    assert metrics.macro_f1 is None
    assert metrics.mean_average_precision is None
    assert metrics.exact_match_ratio == 1.0


def test_to_dict_is_json_ready_with_documented_keys() -> None:
    labels, probabilities = single_label_data(0, classes=3)
    truth, scores = multi_label_data(0, classes=3)

    single = single_label_metrics(labels, probabilities, ["a", "b", "c"]).to_dict()
    multi = multi_label_metrics(truth, scores, [0.5] * 3, ["a", "b", "c"]).to_dict()

    json.dumps([single, multi])
    assert single["kind"] == "single-label"
    assert set(single["per_class"]["a"]) == {"precision", "recall", "f1", "support"}
    assert len(single["confusion_matrix"]) == 3
    assert multi["kind"] == "multi-label"
    assert set(multi["per_class"]["c"]) == {
        "precision",
        "recall",
        "f1",
        "support",
        "average_precision",
        "threshold",
    }
    assert multi["classes_without_positives"] == ["c"]


def test_rejection_metrics_counts_answered_images() -> None:
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 0])

    result = rejection_metrics(labels, probabilities, threshold=0.6)

    assert result == {
        "threshold": 0.6,
        "count": 4,
        "answered": 3,
        "coverage": 0.75,
        "accuracy": pytest.approx(2 / 3),
    }
    assert rejection_metrics(labels, probabilities, threshold=0.95)["accuracy"] is None


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_ood_auroc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    known = rng.normal(size=150).round(1)
    unknown = rng.normal(loc=0.8, size=60).round(1)

    result = ood_auroc(known, unknown)

    expected = roc_auc_score(
        np.r_[np.zeros(len(known)), np.ones(len(unknown))], np.r_[known, unknown]
    )
    assert result == pytest.approx(expected)


def test_ood_auroc_extremes() -> None:
    assert ood_auroc([0.1, 0.2], [0.8, 0.9]) == 1.0
    assert ood_auroc([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert ood_auroc([0.5, 0.5], [0.5]) == 0.5


GOOD_P = np.array([[0.7, 0.3], [0.2, 0.8]])


@pytest.mark.parametrize(
    ("y_true", "probabilities", "class_names", "match"),
    [
        ([0, 1, 1], GOOD_P, ["a", "b"], r"y_true has 3 images but probabilities has 2"),
        ([0, 2], GOOD_P, ["a", "b"], r"class_id 2 but there are 2 classes"),
        ([0, -1], GOOD_P, ["a", "b"], r"class_id -1"),
        ([0.5, 1], GOOD_P, ["a", "b"], r"integer class_ids; got float64"),
        ([[0], [1]], GOOD_P, ["a", "b"], r"1-D class_ids .* got shape \(2, 1\)"),
        ([0, 1], GOOD_P * 3, ["a", "b"], r"\[0, 1\]; got values from 0.6 to 2.4"),
        (
            [0, 1],
            [0.7, 0.3],
            ["a", "b"],
            r"shape \(images, classes\).*got shape \(2,\)",
        ),
        ([0, 1], [[np.nan, 1], [0, 1]], ["a", "b"], r"NaN or infinite"),
        ([0, 1], GOOD_P, ["a"], r"got 1 class_names for 2 probability columns"),
        ([0, 1], GOOD_P, ["a", "a"], r"distinct; repeated: \['a'\]"),
        (np.array([], int), np.zeros((0, 2)), ["a", "b"], r"0 images to measure"),
    ],
    ids=[
        "length-mismatch",
        "class-id-too-high",
        "class-id-negative",
        "fractional-label",
        "labels-2d",
        "logits-not-probabilities",
        "probabilities-1d",
        "nan",
        "too-few-names",
        "repeated-names",
        "empty",
    ],
)
def test_single_label_metrics_rejects_bad_input(
    y_true: object, probabilities: object, class_names: list[str], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        single_label_metrics(y_true, probabilities, class_names)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("y_true", "thresholds", "match"),
    [
        (
            [[1, 0]],
            [0.5, 0.5],
            r"y_true has shape \(1, 2\) but probabilities .*\(2, 2\)",
        ),
        ([[1, 0], [2, 1]], [0.5, 0.5], r"only 0 and 1; found 2"),
        (
            [[1, 0], [0, 1]],
            [0.5],
            r"thresholds must have shape \(2,\).*got shape \(1,\)",
        ),
        ([[1, 0], [0, 1]], [0.5, np.inf], r"thresholds must be finite"),
    ],
    ids=["shape-mismatch", "not-binary", "threshold-count", "threshold-infinite"],
)
def test_multi_label_metrics_rejects_bad_input(
    y_true: object, thresholds: object, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        multi_label_metrics(y_true, GOOD_P, thresholds, ["a", "b"])  # type: ignore[arg-type]


def test_ood_auroc_rejects_empty_scores() -> None:
    with pytest.raises(ValidationError, match=r"unknown_scores must be a non-empty"):
        ood_auroc([0.1, 0.2], [])


def test_rejection_metrics_rejects_nan_threshold() -> None:
    with pytest.raises(ValidationError, match=r"threshold must be a finite number"):
        rejection_metrics([0, 1], GOOD_P, float("nan"))

"""Tests of per-class thresholds, the rejection threshold and conformal sets."""

from __future__ import annotations

import numpy as np
import pytest

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.calibration import softmax
from pigeonhole.evaluation.metrics import multi_label_metrics, rejection_metrics
from pigeonhole.evaluation.thresholds import (
    NO_POSITIVES_THRESHOLD,
    ThresholdObjective,
    conformal_quantile,
    prediction_set,
    rejection_threshold,
    tune_class_thresholds,
)

SEEDS = [0, 1, 2]


def separable_labels(seed: int, images: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Positives score from Beta(5, 2), negatives from Beta(2, 5): overlapping."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((images, 4)) < [0.1, 0.3, 0.5, 0.2]).astype(int)
    probabilities = np.where(
        truth == 1, rng.beta(5, 2, truth.shape), rng.beta(2, 5, truth.shape)
    )
    return truth, probabilities


def precision_at(truth: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    predicted = scores >= threshold
    return float(truth[predicted].mean()) if predicted.any() else 0.0


def f1_at(truth: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    predicted = scores >= threshold
    hits = (predicted & (truth == 1)).sum()
    return 2 * hits / (predicted.sum() + truth.sum())


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_f1_thresholds_are_the_best_of_every_candidate(seed: int) -> None:
    truth, probabilities = separable_labels(seed)

    tuned = tune_class_thresholds(truth, probabilities)

    assert tuned.objective is ThresholdObjective.F1
    assert tuned.target_precision is None
    for class_id, threshold in enumerate(tuned.thresholds):
        scores, column = probabilities[:, class_id], truth[:, class_id]
        best = max(f1_at(column, scores, candidate) for candidate in np.unique(scores))
        assert f1_at(column, scores, threshold) == pytest.approx(best)


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95], ids=lambda t: f"target-{t}")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_precision_thresholds_reach_the_target_at_the_lowest_threshold(
    seed: int, target: float
) -> None:
    truth, probabilities = separable_labels(seed)

    tuned = tune_class_thresholds(
        truth, probabilities, objective="precision", target_precision=target
    )

    assert tuned.missed_target == ()
    metrics = multi_label_metrics(truth, probabilities, tuned.as_array(), list("abcd"))
    for class_id, entry in enumerate(metrics.per_class):
        assert entry.precision >= target
        scores, column = probabilities[:, class_id], truth[:, class_id]
        lower = scores[scores < tuned.thresholds[class_id]]
        assert all(precision_at(column, scores, t) < target for t in lower)


def test_class_missing_the_target_falls_back_to_max_f1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    truth = np.array([[1, 1], [0, 1], [1, 0], [0, 0]] * 5)
    probabilities = np.array([[0.9, 0.5], [0.2, 0.5], [0.8, 0.5], [0.1, 0.5]] * 5)

    tuned = tune_class_thresholds(
        truth, probabilities, objective=ThresholdObjective.PRECISION
    )

    assert tuned.thresholds == (0.8, 0.5)  # class 1 scores carry no information
    assert tuned.missed_target == (1,)
    assert "classes [1] never reach precision 0.9" in caplog.text


def test_class_without_positives_gets_default_threshold() -> None:
    truth = np.array([[1, 0], [0, 0], [1, 0]])
    probabilities = np.array([[0.7, 0.9], [0.3, 0.1], [0.6, 0.2]])

    tuned = tune_class_thresholds(truth, probabilities, objective="precision")

    assert tuned.thresholds == (0.6, NO_POSITIVES_THRESHOLD)
    assert tuned.without_positives == (1,)
    assert tuned.missed_target == ()
    assert tuned.to_dict()["objective"] == "precision"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "recall"}, r"objective 'recall' is not one of: f1, precision"),
        ({"target_precision": 0.0}, r"target_precision must be in \(0, 1\]; got 0.0"),
        ({"target_precision": 1.5}, r"target_precision must be in \(0, 1\]; got 1.5"),
    ],
    ids=["objective", "target-zero", "target-above-one"],
)
def test_tune_class_thresholds_rejects_bad_settings(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        tune_class_thresholds([[1, 0]], [[0.5, 0.5]], **kwargs)  # type: ignore[arg-type]


def test_tune_class_thresholds_rejects_shape_mismatch() -> None:
    with pytest.raises(ValidationError, match=r"y_true has shape \(2, 2\)"):
        tune_class_thresholds(np.ones((2, 2)), np.full((2, 3), 0.5))


def single_label_model(seed: int, images: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities calibrated by construction: labels drawn from them."""
    rng = np.random.default_rng(seed)
    probabilities = softmax(rng.normal(scale=2.5, size=(images, 6)))
    cumulative = probabilities.cumsum(axis=1)
    labels = np.minimum((rng.random((images, 1)) > cumulative).sum(axis=1), 5)
    return labels, probabilities


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_rejection_threshold_is_the_smallest_reaching_the_target(seed: int) -> None:
    labels, probabilities = single_label_model(seed)

    threshold = rejection_threshold(labels, probabilities, target_precision=0.9)

    answered = rejection_metrics(labels, probabilities, threshold)
    assert answered["accuracy"] is not None and answered["accuracy"] >= 0.9
    assert 0 < answered["coverage"] < 1
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    lower = np.unique(confidence[confidence < threshold])
    answered_at = confidence[None, :] >= lower[:, None]
    accuracy_at = (answered_at & correct).sum(axis=1) / answered_at.sum(axis=1)
    assert (accuracy_at < 0.9).all()


def test_rejection_threshold_is_zero_when_everything_is_right() -> None:
    probabilities = np.array([[0.6, 0.4], [0.3, 0.7]])

    assert rejection_threshold([0, 1], probabilities) == 0.0


def test_rejection_threshold_falls_back_to_best_accuracy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([1, 0, 1, 0])  # best accuracy 0.5, first at 0.8, then 0.6

    threshold = rejection_threshold(labels, probabilities, target_precision=0.95)

    assert threshold == 0.6
    assert "no rejection threshold reaches accuracy 0.95" in caplog.text


def test_rejection_threshold_without_images_is_zero() -> None:
    assert rejection_threshold(np.array([], int), np.zeros((0, 3))) == 0.0


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95], ids=lambda c: f"cover-{c}")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_conformal_sets_reach_the_coverage_on_held_out_images(
    seed: int, coverage: float
) -> None:
    labels, probabilities = single_label_model(seed, images=6000)
    valid, test = slice(0, 3000), slice(3000, None)

    q = conformal_quantile(labels[valid], probabilities[valid], coverage)

    sets = [prediction_set(row, q) for row in probabilities[test]]
    pairs = zip(labels[test], sets, strict=True)
    covered = np.mean([label in found for label, found in pairs])
    assert coverage - 0.02 <= covered <= coverage + 0.03
    assert np.mean([len(found) for found in sets]) < 6


def test_conformal_quantile_is_the_ceil_rank_score() -> None:
    probabilities = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    labels = np.array([0, 1, 1, 0])  # scores 0.2, 0.3, 0.6, 0.1

    assert conformal_quantile(labels, probabilities, 0.6) == pytest.approx(0.3)
    assert conformal_quantile(labels, probabilities, 0.4) == pytest.approx(0.2)


def test_conformal_quantile_with_too_few_images_includes_every_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    q = conformal_quantile([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]), 0.9)

    assert q == 1.0
    assert prediction_set([0.99, 0.01], q) == [0, 1]
    assert "too few for coverage 0.9" in caplog.text


@pytest.mark.parametrize("coverage", [0.0, 1.0, -0.5], ids=str)
def test_conformal_quantile_rejects_bad_coverage(coverage: float) -> None:
    with pytest.raises(ValidationError, match=r"coverage must be in \(0, 1\)"):
        conformal_quantile([0], [[0.5, 0.5]], coverage)


def test_prediction_set_orders_by_probability() -> None:
    assert prediction_set([0.2, 0.5, 0.3], 0.8) == [1, 2, 0]
    assert prediction_set([0.2, 0.5, 0.3], 0.1) == []


def test_prediction_set_rejects_a_matrix() -> None:
    with pytest.raises(ValidationError, match=r"one image's row .* shape \(1, 2\)"):
        prediction_set([[0.5, 0.5]], 0.5)

"""Tests of calibration: ECE, reliability curves and temperature scaling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit
from scipy.special import softmax as scipy_softmax

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
    sigmoid,
    softmax,
)

SEEDS = [0, 1, 2]


def calibrated_logits(
    seed: int, images: int = 4000, classes: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Logits, and labels drawn from their own softmax: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(images, classes))
    probabilities = softmax(logits)
    cumulative = probabilities.cumsum(axis=1)
    labels = (rng.random((images, 1)) > cumulative).sum(axis=1)
    return logits, np.minimum(labels, classes - 1)


def brute_force_ece(probabilities: np.ndarray, labels: np.ndarray, bins: int) -> float:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    total = 0.0
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        inside = (confidence > low) & (confidence <= high)
        if index == 0:
            inside |= confidence == 0
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            total += inside.sum() * gap
    return total / len(labels)


@pytest.mark.parametrize("bins", [1, 10, 15], ids=lambda b: f"{b}-bins")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_ece_matches_brute_force(seed: int, bins: int) -> None:
    logits, labels = calibrated_logits(seed, images=500)
    probabilities = softmax(logits * 2)

    result = expected_calibration_error(probabilities, labels, bins=bins)

    assert result == pytest.approx(brute_force_ece(probabilities, labels, bins))


def test_reliability_curve_bins_and_counts() -> None:
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5], [0.75, 0.25], [0.1, 0.9]])
    labels = np.array([0, 1, 0, 0])

    curve = reliability_curve(probabilities, labels, bins=4)

    assert curve.bin_edges == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert curve.count == (0, 1, 1, 2)  # 0.5 in (0.25, 0.5]; 0.75 in (0.5, 0.75]
    assert curve.confidence == (None, 0.5, 0.75, pytest.approx(0.95))
    assert curve.accuracy == (None, 0.0, 1.0, 0.5)
    assert curve.ece == pytest.approx((0.5 + 0.25 + 2 * 0.45) / 4)
    assert curve.to_dict()["count"] == [0, 1, 1, 2]


def test_ece_is_zero_without_images() -> None:
    assert expected_calibration_error(np.zeros((0, 3)), np.array([], int)) == 0.0


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_temperature_recovers_overconfidence_and_lowers_ece(seed: int) -> None:
    logits, labels = calibrated_logits(seed)
    overconfident = logits * 3

    temperature = fit_temperature(overconfident, labels)

    assert temperature == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(softmax(overconfident), labels)
    after = expected_calibration_error(softmax(overconfident, temperature), labels)
    assert after < before / 2


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_temperature_of_calibrated_logits_is_near_one(seed: int) -> None:
    logits, labels = calibrated_logits(seed)

    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
def test_multi_label_temperature_recovers_overconfidence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(3000, 4))
    truth = (rng.random(logits.shape) < sigmoid(logits)).astype(int)

    temperature = fit_temperature(logits * 3, truth, multi_label=True)

    assert temperature == pytest.approx(3.0, rel=0.1)


def test_temperature_without_images_is_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.array([], int)) == 1.0


def test_temperature_stays_in_range_when_logits_are_hopeless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    labels = np.array([1, 0] * 10)  # always wrong: the flattest softmax wins

    temperature = fit_temperature(logits, labels)

    assert temperature == pytest.approx(20.0, rel=0.01)
    assert "edge of the range" in caplog.text


def test_softmax_and_sigmoid_are_stable_and_match_scipy() -> None:
    logits = np.array([[1000.0, 999.0, -1000.0], [0.1, 0.2, 0.3]])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probabilities = softmax(logits, temperature=2.0)
        squashed = sigmoid(logits)

    assert probabilities == pytest.approx(scipy_softmax(logits / 2.0, axis=1))
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert squashed == pytest.approx(expit(logits))
    assert softmax([2.0, 0.0]) == pytest.approx(scipy_softmax([2.0, 0.0]))


@pytest.mark.parametrize(
    "temperature", [0.0, -1.0, float("nan"), float("inf")], ids=str
)
def test_softmax_rejects_bad_temperature(temperature: float) -> None:
    with pytest.raises(ValidationError, match=r"temperature must be a positive finite"):
        softmax([[1.0, 2.0]], temperature)


@pytest.mark.parametrize("bins", [0, -3, 2.5, True], ids=str)
def test_reliability_curve_rejects_bad_bins(bins: object) -> None:
    with pytest.raises(ValidationError, match=r"bins must be an integer of at least 1"):
        reliability_curve([[0.6, 0.4]], [0], bins=bins)  # type: ignore[arg-type]


def test_fit_temperature_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValidationError, match=r"y_true has 3 images but logits has 2"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValidationError, match=r"y_true has shape \(2,\) but logits"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 1]), multi_label=True)


def test_ece_rejects_logits() -> None:
    with pytest.raises(ValidationError, match=r"not logits"):
        expected_calibration_error(np.array([[3.0, -1.0]]), np.array([0]))

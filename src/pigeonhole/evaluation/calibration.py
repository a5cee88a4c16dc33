"""Calibration: does a confidence of 0.8 come true 80% of the time?

:func:`expected_calibration_error` and :func:`reliability_curve` compare the top-1
confidence of single-label predictions with how often they are right, in equal-width
bins. Bin ``i`` of ``B`` holds confidences in ``(i / B, (i + 1) / B]``; the first bin
also holds 0.

:func:`fit_temperature` fits temperature scaling (Guo et al., 2017) on the valid
split's logits: one number ``T`` that divides every logit, chosen to minimise the
negative log-likelihood. It changes no top-1 prediction, only how confident they are.

Example:
    >>> import numpy as np
    >>> from pigeonhole.evaluation.calibration import fit_temperature, softmax
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(2000, 4)) * 2
    >>> labels = np.array([rng.choice(4, p=row) for row in softmax(logits)])
    >>> round(fit_temperature(logits * 3, labels))
    3
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.metrics import FloatArray, as_multi_label, as_single_label

logger = logging.getLogger(__name__)

#: Temperature scaling searches this range; the ends mean something is off.
TEMPERATURE_RANGE = (0.05, 20.0)
#: Default number of equal-width confidence bins.
DEFAULT_BINS = 15


@dataclass(frozen=True)
class ReliabilityCurve:
    """Top-1 confidence against accuracy, bin by bin.

    Attributes:
        bin_edges: ``bins + 1`` edges from 0 to 1.
        confidence: Mean top-1 confidence of each bin; None for an empty bin.
        accuracy: Share of each bin's images predicted right; None for an empty bin.
        count: Images in each bin.
    """

    bin_edges: tuple[float, ...]
    confidence: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    count: tuple[int, ...]

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap; 0.0 if empty."""
        total = sum(self.count)
        gaps = [
            count * abs(accuracy - confidence)
            for confidence, accuracy, count in zip(
                self.confidence, self.accuracy, self.count, strict=True
            )
            if confidence is not None and accuracy is not None
        ]
        return float(sum(gaps) / total) if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Returns the four fields as lists, and ``ece``."""
        return {
            "bin_edges": list(self.bin_edges),
            "confidence": list(self.confidence),
            "accuracy": list(self.accuracy),
            "count": list(self.count),
            "ece": self.ece,
        }


def reliability_curve(
    probabilities: npt.ArrayLike, y_true: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> ReliabilityCurve:
    """Bins single-label predictions by top-1 confidence.

    Args:
        probabilities: Predicted probabilities, shape ``(N, C)``.
        y_true: The true class_id of each image, shape ``(N,)``.
        bins: Number of equal-width bins over [0, 1].

    Returns:
        The curve; with no images every bin is empty.

    Raises:
        ValidationError: Inputs as in
            :func:`~pigeonhole.evaluation.metrics.single_label_metrics`, or
            ``bins`` below 1.
    """
    labels, scores = as_single_label(y_true, probabilities)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationError(f"bins must be an integer of at least 1; got {bins!r}")

    edges = np.linspace(0.0, 1.0, bins + 1)
    confidence = scores.max(axis=1)
    correct = scores.argmax(axis=1) == labels
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(index, minlength=bins)
    confidence_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct, minlength=bins)
    return ReliabilityCurve(
        bin_edges=tuple(float(edge) for edge in edges),
        confidence=_bin_means(confidence_sum, count),
        accuracy=_bin_means(correct_sum, count),
        count=tuple(int(n) for n in count),
    )


def expected_calibration_error(
    probabilities: npt.ArrayLike, y_true: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> float:
    """Expected calibration error of single-label predictions.

    The mean, over bins weighted by their image count, of the gap between the mean
    top-1 confidence and the accuracy. 0 is perfectly calibrated.

    Args:
        probabilities: Predicted probabilities, shape ``(N, C)``.
        y_true: The true class_id of each image, shape ``(N,)``.
        bins: Number of equal-width bins over [0, 1].

    Returns:
        The ECE in [0, 1]; 0.0 with no images.

    Raises:
        ValidationError: As :func:`reliability_curve`.
    """
    return reliability_curve(probabilities, y_true, bins).ece


def softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Softmax over the last axis of ``logits / temperature``, without overflow.

    Args:
        logits: Scores of any shape; the last axis is the classes.
        temperature: Divides the logits; above 1 softens, below 1 sharpens.
    """
    scaled = _scaled(logits, temperature)
    exponentials = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def sigmoid(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Element-wise sigmoid of ``logits / temperature``, without overflow.

    Args:
        logits: Scores of any shape.
        temperature: Divides the logits; above 1 softens, below 1 sharpens.
    """
    # 1 / (1 + exp(-x)) overflows for very negative x; exp(-log(1 + exp(-x))) does not.
    return np.exp(-np.logaddexp(0.0, -_scaled(logits, temperature)))


def fit_temperature(
    logits: npt.ArrayLike, y_true: npt.ArrayLike, *, multi_label: bool = False
) -> float:
    """Fits temperature scaling on held-out logits.

    Minimises the mean softmax cross-entropy (or sigmoid binary cross-entropy when
    ``multi_label``) of ``logits / T`` over ``log T``, bounded to
    :data:`TEMPERATURE_RANGE`. Fit on the valid split, never on the test split.

    Args:
        logits: Raw model outputs, shape ``(N, C)``.
        y_true: Class_ids of shape ``(N,)``, or a 0/1 matrix of shape ``(N, C)``
            when ``multi_label``.
        multi_label: Whether the model predicts labels independently (sigmoid).

    Returns:
        The temperature ``T``; 1.0 when there are no images.

    Raises:
        ValidationError: Shapes disagree, labels are out of range, or logits hold
            NaN or infinity.

    Example:
        >>> import numpy as np
        >>> logits = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> fit_temperature(logits, np.array([0, 1, 1, 0])) > 10
        True
    """
    if multi_label:
        truth, values = as_multi_label(y_true, logits, name="logits", unit_range=False)
        loss = _binary_cross_entropy(values, truth.astype(np.float64))
    else:
        labels, values = as_single_label(
            y_true, logits, name="logits", unit_range=False
        )
        loss = _cross_entropy(values, labels)
    if len(values) == 0:
        return 1.0

    low, high = TEMPERATURE_RANGE
    result = minimize_scalar(
        loss,
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(np.exp(result.x))
    if not low * 1.01 < temperature < high * 0.99:
        logger.warning(
            "temperature %.3g is at the edge of the range %s; the valid split may be "
            "too small or the logits degenerate",
            temperature,
            TEMPERATURE_RANGE,
        )
    return temperature


def _scaled(logits: npt.ArrayLike, temperature: float) -> FloatArray:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValidationError(
            f"temperature must be a positive finite number; got {temperature!r}"
        )
    return np.asarray(logits, dtype=np.float64) / temperature


def _cross_entropy(
    logits: FloatArray, labels: npt.NDArray[np.int64]
) -> Callable[[float], float]:
    true_logits = logits[np.arange(len(labels)), labels]

    def loss(log_temperature: float) -> float:
        scale = math.exp(-log_temperature)
        log_normaliser = logsumexp(logits * scale, axis=1)
        return float(np.mean(log_normaliser - true_logits * scale))

    return loss


def _binary_cross_entropy(
    logits: FloatArray, truth: FloatArray
) -> Callable[[float], float]:
    def loss(log_temperature: float) -> float:
        scaled = logits * math.exp(-log_temperature)
        return float(np.mean(np.logaddexp(0.0, scaled) - truth * scaled))

    return loss


def _bin_means(
    sums: npt.NDArray[Any], count: npt.NDArray[Any]
) -> tuple[float | None, ...]:
    return tuple(
        float(total / n) if n else None for total, n in zip(sums, count, strict=True)
    )

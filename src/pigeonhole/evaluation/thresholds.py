"""Decision thresholds chosen on the valid split.

* :func:`tune_class_thresholds`: one threshold per label of a multi-label model.
* :func:`rejection_threshold`: the top-1 confidence below which a single-label model
  answers "not sure" instead of a class.
* :func:`conformal_quantile` and :func:`prediction_set`: split-conformal prediction
  sets (Vovk et al.; Angelopoulos and Bates, 2021): per image, a set of classes that
  holds the true class with a chosen probability.

Apart from the documented defaults, every threshold is a score seen on the valid
split, and a score counts as reaching a threshold when it is at or above it, so a
threshold reproduces exactly the decisions it was chosen for.

Example:
    >>> import numpy as np
    >>> from pigeonhole.evaluation.thresholds import tune_class_thresholds
    >>> y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    >>> p = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.3], [0.1, 0.1]])
    >>> tune_class_thresholds(y, p).thresholds
    (0.6, 0.3)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.metrics import (
    FloatArray,
    as_multi_label,
    as_single_label,
    cumulative_counts,
)

logger = logging.getLogger(__name__)

#: The threshold of a class with no positive image on the valid split.
NO_POSITIVES_THRESHOLD = 0.5


class ThresholdObjective(StrEnum):
    """What :func:`tune_class_thresholds` optimises per class."""

    F1 = "f1"
    PRECISION = "precision"


@dataclass(frozen=True)
class ClassThresholds:
    """Per-class thresholds and how they were chosen.

    Attributes:
        objective: What was optimised.
        thresholds: One threshold per class, in class_id order.
        target_precision: The precision aimed at; None for the F1 objective.
        missed_target: Class_ids that never reached ``target_precision`` and got
            their max-F1 threshold instead.
        without_positives: Class_ids with no positive image, which got
            :data:`NO_POSITIVES_THRESHOLD`.
    """

    objective: ThresholdObjective
    thresholds: tuple[float, ...]
    target_precision: float | None
    missed_target: tuple[int, ...]
    without_positives: tuple[int, ...]

    def as_array(self) -> FloatArray:
        """The thresholds as a float array of shape ``(C,)``."""
        return np.array(self.thresholds, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Returns every field, ``objective`` as its string value."""
        return {
            "objective": self.objective.value,
            "thresholds": list(self.thresholds),
            "target_precision": self.target_precision,
            "missed_target": list(self.missed_target),
            "without_positives": list(self.without_positives),
        }


def tune_class_thresholds(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    objective: str | ThresholdObjective = ThresholdObjective.F1,
    target_precision: float = 0.9,
) -> ClassThresholds:
    """Chooses one threshold per class on the valid split.

    With ``objective="f1"`` each class gets the threshold that maximises its F1
    (the highest such threshold on ties). With ``objective="precision"`` it gets the
    lowest threshold at which its precision reaches ``target_precision``, which
    keeps the most recall; a class that never reaches it falls back to its max-F1
    threshold, is listed in ``missed_target`` and logged as a warning.

    Args:
        y_true: 0/1 matrix of true labels, shape ``(N, C)``.
        probabilities: Predicted probabilities, shape ``(N, C)``.
        objective: ``"f1"`` or ``"precision"``.
        target_precision: The precision to reach, in (0, 1]; used by ``precision``.

    Returns:
        The thresholds; a class with no positive image gets 0.5.

    Raises:
        ValidationError: Unknown objective, target outside (0, 1], or inputs as in
            :func:`~pigeonhole.evaluation.metrics.multi_label_metrics`.
    """
    goal = _parse_objective(objective)
    target = _check_target(target_precision)
    truth, scores = as_multi_label(y_true, probabilities)

    thresholds: list[float] = []
    missed: list[int] = []
    empty: list[int] = []
    for class_id in range(scores.shape[1]):
        column = truth[:, class_id]
        if not column.any():
            empty.append(class_id)
            thresholds.append(NO_POSITIVES_THRESHOLD)
            continue
        reached = None
        if goal is ThresholdObjective.PRECISION:
            reached = _lowest_reaching(column, scores[:, class_id], target)
            if reached is None:
                missed.append(class_id)
        best = _best_f1(column, scores[:, class_id])
        thresholds.append(best if reached is None else reached)

    if missed:
        logger.warning(
            "classes %s never reach precision %.3g on the valid split; they use their "
            "max-F1 threshold instead",
            missed,
            target,
        )
    return ClassThresholds(
        objective=goal,
        thresholds=tuple(thresholds),
        target_precision=target if goal is ThresholdObjective.PRECISION else None,
        missed_target=tuple(missed),
        without_positives=tuple(empty),
    )


def rejection_threshold(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    target_precision: float = 0.95,
) -> float:
    """The smallest top-1 confidence threshold that makes answers precise enough.

    An image is answered when its top-1 confidence is at or above the threshold.
    This returns the smallest threshold at which the accuracy on the answered valid
    images reaches ``target_precision``, so the most images get an answer:

    * 0.0 when answering every image already reaches the target;
    * when no threshold reaches it, the threshold with the best accuracy (the
      lowest one among equals, so the most images are answered), with a warning.
      At worst that answers only the most confident image(s);
    * 0.0 with no images, with a warning.

    Args:
        y_true: The true class_id of each image, shape ``(N,)``.
        probabilities: Predicted probabilities, shape ``(N, C)``.
        target_precision: The accuracy to reach on answered images, in (0, 1].

    Returns:
        The threshold, in [0, 1].

    Raises:
        ValidationError: Target outside (0, 1], or inputs as in
            :func:`~pigeonhole.evaluation.metrics.single_label_metrics`.
    """
    target = _check_target(target_precision)
    labels, scores = as_single_label(y_true, probabilities)
    if len(labels) == 0:
        logger.warning("no valid images to choose a rejection threshold; using 0.0")
        return 0.0

    correct = scores.argmax(axis=1) == labels
    thresholds, right, wrong = cumulative_counts(correct, scores.max(axis=1))
    accuracy = right / (right + wrong)
    if accuracy[-1] >= target:
        return 0.0
    reached = np.flatnonzero(accuracy >= target)
    if reached.size:
        return float(thresholds[reached[-1]])
    best = np.flatnonzero(accuracy == accuracy.max())[-1]
    logger.warning(
        "no rejection threshold reaches accuracy %.3g on the valid split; using %.4g, "
        "which gives the best accuracy (%.3g) on %d of %d images",
        target,
        thresholds[best],
        accuracy[best],
        right[best] + wrong[best],
        len(labels),
    )
    return float(thresholds[best])


def conformal_quantile(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, coverage: float
) -> float:
    """The split-conformal score threshold for prediction sets.

    The score of an image is ``1 - p[true class]``. The threshold ``q`` is the
    ``ceil((n + 1) * coverage)``-th smallest of the ``n`` valid scores, the
    ``ceil((n + 1) * coverage) / n`` empirical quantile. Then, for a new image
    exchangeable with the valid ones, ``{c : 1 - p_c <= q}`` holds the true class
    with probability at least ``coverage``.

    Args:
        y_true: The true class_id of each valid image, shape ``(N,)``.
        probabilities: Predicted probabilities, shape ``(N, C)``.
        coverage: The probability that a set holds the true class, in (0, 1).

    Returns:
        ``q``; 1.0 (every class in every set) when there are too few images for the
        coverage, that is when ``ceil((n + 1) * coverage) > n``, with a warning.

    Raises:
        ValidationError: Coverage outside (0, 1), or inputs as in
            :func:`~pigeonhole.evaluation.metrics.single_label_metrics`.

    Example:
        >>> import numpy as np
        >>> p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
        >>> q = conformal_quantile(np.array([0, 1, 1, 0]), p, coverage=0.6)
        >>> round(q, 3), prediction_set(p[1], q), prediction_set(p[2], q)
        (0.3, [1], [])
    """
    if not (isinstance(coverage, Real) and 0 < coverage < 1):
        raise ValidationError(f"coverage must be in (0, 1); got {coverage!r}")
    labels, scores = as_single_label(y_true, probabilities)

    count = len(labels)
    # The small margin keeps float error in (n + 1) * coverage from adding one.
    rank = math.ceil((count + 1) * coverage - 1e-9)
    if rank > count:
        logger.warning(
            "%d valid images are too few for coverage %.3g; prediction sets will "
            "hold every class",
            count,
            coverage,
        )
        return 1.0
    nonconformity = 1.0 - scores[np.arange(count), labels]
    return float(np.sort(nonconformity)[rank - 1])


def prediction_set(probabilities: npt.ArrayLike, q: float) -> list[int]:
    """The classes of one image whose score ``1 - p`` is at most ``q``.

    Args:
        probabilities: One image's probabilities, shape ``(C,)``.
        q: The threshold from :func:`conformal_quantile`.

    Returns:
        Class_ids, most probable first; empty when no class is close enough.

    Raises:
        ValidationError: ``probabilities`` is not 1-D, or ``q`` is not finite.
    """
    row = np.asarray(probabilities, dtype=np.float64)
    if row.ndim != 1:
        raise ValidationError(
            f"probabilities must be one image's row of shape (classes,); "
            f"got shape {row.shape}"
        )
    if not math.isfinite(q):
        raise ValidationError(f"q must be a finite number; got {q!r}")
    order = np.argsort(-row, kind="stable")
    return [int(class_id) for class_id in order if 1.0 - row[class_id] <= q]


def _best_f1(truth: npt.NDArray[np.bool_], scores: FloatArray) -> float:
    thresholds, true_positives, false_positives = cumulative_counts(truth, scores)
    f1 = 2 * true_positives / (true_positives + false_positives + truth.sum())
    return float(thresholds[np.argmax(f1)])


def _lowest_reaching(
    truth: npt.NDArray[np.bool_], scores: FloatArray, target: float
) -> float | None:
    thresholds, true_positives, false_positives = cumulative_counts(truth, scores)
    precision = true_positives / (true_positives + false_positives)
    reached = np.flatnonzero(precision >= target)
    return float(thresholds[reached[-1]]) if reached.size else None


def _parse_objective(objective: str | ThresholdObjective) -> ThresholdObjective:
    try:
        return ThresholdObjective(objective)
    except ValueError:
        accepted = ", ".join(member.value for member in ThresholdObjective)
        raise ValidationError(
            f"objective {objective!r} is not one of: {accepted}"
        ) from None


def _check_target(target_precision: float) -> float:
    if not (isinstance(target_precision, Real) and 0 < target_precision <= 1):
        raise ValidationError(
            f"target_precision must be in (0, 1]; got {target_precision!r}"
        )
    return float(target_precision)

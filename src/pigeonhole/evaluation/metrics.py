"""Metrics of a model on one split: single-label, multi-label and rejection.

Conventions, the same in every function:

* ``probabilities`` has one row per image and one column per class, in
  ``class_names`` order; a single-label prediction is the row's argmax (the lowest
  class_id on ties), a multi-label one is every class with ``probability >= threshold``.
* Precision of a class that is never predicted, and recall of a class with no images,
  are 0, as in scikit-learn's ``zero_division=0``.
* Macro averages are over the classes that have at least one image in ``y_true``: a
  class missing from the test split cannot be measured, and counting it as 0 would
  punish the model for the split. Micro averages count every class.

Example:
    >>> import numpy as np
    >>> from pigeonhole.evaluation.metrics import single_label_metrics
    >>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> metrics = single_label_metrics(np.array([0, 1, 1]), probabilities, ["a", "b"])
    >>> round(metrics.accuracy, 3), metrics.confusion_matrix
    (0.667, ((1, 0), (1, 1)))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.arrays import (
    BoolArray,
    FloatArray,
    IntArray,
    as_class_names,
    as_multi_label,
    as_scores,
    as_single_label,
    as_thresholds,
    require_images,
)

__all__ = [
    "TOP_K",
    "BoolArray",
    "ClassMetrics",
    "FloatArray",
    "IntArray",
    "LabelMetrics",
    "MultiLabelMetrics",
    "RejectionMetrics",
    "SingleLabelMetrics",
    "as_class_names",
    "as_multi_label",
    "as_single_label",
    "average_precision",
    "confusion_matrix",
    "cumulative_counts",
    "multi_label_metrics",
    "ood_auroc",
    "rejection_metrics",
    "single_label_metrics",
]

#: Top-k accuracy is reported for this k, when there are more classes than k.
TOP_K = 5


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class, and its number of true images.

    Attributes:
        name: The class name.
        precision: Share of the images predicted as the class that have it.
        recall: Share of the images that have the class that were predicted as it.
        f1: Harmonic mean of precision and recall.
        support: Images that have the class in ``y_true``.
    """

    name: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        """Returns ``precision``, ``recall``, ``f1`` and ``support``."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


@dataclass(frozen=True)
class LabelMetrics(ClassMetrics):
    """:class:`ClassMetrics` of one label of a multi-label project.

    Attributes:
        average_precision: Area under the precision-recall curve; None when the
            class has no positive image.
        threshold: The probability at or above which the label is predicted.
    """

    average_precision: float | None
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """Adds ``average_precision`` and ``threshold`` to the parent's keys."""
        return {
            **super().to_dict(),
            "average_precision": self.average_precision,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class SingleLabelMetrics:
    """Metrics of a single-label model on one split.

    Attributes:
        class_names: Class names, in class_id order.
        count: Images measured.
        accuracy: Share of images whose top-1 prediction is right.
        top5_accuracy: Share whose true class is among the 5 most probable; None
            with 5 classes or fewer, where it is always 1.
        per_class: One entry per class, in class_id order.
        macro_precision: Mean precision over the classes with images.
        macro_recall: Mean recall over the classes with images.
        macro_f1: Mean F1 over the classes with images.
        confusion_matrix: Counts, rows are the true class and columns the predicted.
    """

    class_names: tuple[str, ...]
    count: int
    accuracy: float
    top5_accuracy: float | None
    per_class: tuple[ClassMetrics, ...]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion_matrix: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``per_class`` maps class name to its metrics."""
        return {
            "kind": "single-label",
            "class_names": list(self.class_names),
            "count": self.count,
            "accuracy": self.accuracy,
            "top5_accuracy": self.top5_accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "per_class": {entry.name: entry.to_dict() for entry in self.per_class},
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
        }


@dataclass(frozen=True)
class MultiLabelMetrics:
    """Metrics of a multi-label model on one split.

    Attributes:
        class_names: Class names, in class_id order.
        count: Images measured.
        micro_precision: Precision over every (image, class) decision.
        micro_recall: Recall over every (image, class) decision.
        micro_f1: F1 over every (image, class) decision.
        macro_precision: Mean precision over classes with positives; None if none.
        macro_recall: Mean recall over classes with positives; None if none.
        macro_f1: Mean F1 over classes with positives; None if none.
        mean_average_precision: Mean average precision over classes with positives;
            None if no class has one.
        classes_without_positives: Names of the classes left out of the means.
        exact_match_ratio: Share of images whose predicted label set is exactly right.
        per_class: One entry per class, in class_id order.
    """

    class_names: tuple[str, ...]
    count: int
    micro_precision: float
    micro_recall: float
    micro_f1: float
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    mean_average_precision: float | None
    classes_without_positives: tuple[str, ...]
    exact_match_ratio: float
    per_class: tuple[LabelMetrics, ...]

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The thresholds used, in class_id order."""
        return tuple(entry.threshold for entry in self.per_class)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``per_class`` maps class name to its metrics."""
        return {
            "kind": "multi-label",
            "class_names": list(self.class_names),
            "count": self.count,
            "micro_precision": self.micro_precision,
            "micro_recall": self.micro_recall,
            "micro_f1": self.micro_f1,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "mean_average_precision": self.mean_average_precision,
            "classes_without_positives": list(self.classes_without_positives),
            "exact_match_ratio": self.exact_match_ratio,
            "per_class": {entry.name: entry.to_dict() for entry in self.per_class},
        }


class RejectionMetrics(TypedDict):
    """What :func:`rejection_metrics` returns."""

    threshold: float
    count: int
    answered: int
    coverage: float
    accuracy: float | None


def single_label_metrics(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, class_names: Sequence[str]
) -> SingleLabelMetrics:
    """Measures a single-label model.

    Args:
        y_true: The true class_id of each image, shape ``(N,)``.
        probabilities: Predicted probabilities, shape ``(N, C)``.
        class_names: The ``C`` class names, in class_id order.

    Returns:
        The metrics; see the module docstring for the conventions.

    Raises:
        ValidationError: Shapes disagree, a class_id is out of range, a probability
            is outside [0, 1], class names repeat, or there are no images.
    """
    labels, scores = as_single_label(y_true, probabilities)
    names = as_class_names(class_names, scores.shape[1])
    require_images(len(labels))

    matrix = confusion_matrix(labels, scores.argmax(axis=1), len(names))
    support = matrix.sum(axis=1)
    precision, recall, f1 = _precision_recall_f1(
        np.diag(matrix), matrix.sum(axis=0), support
    )
    per_class = _class_metrics(names, precision, recall, f1, support)

    measured = support > 0
    return SingleLabelMetrics(
        class_names=names,
        count=len(labels),
        accuracy=float(np.trace(matrix) / len(labels)),
        top5_accuracy=_top_k_accuracy(labels, scores, TOP_K),
        per_class=per_class,
        macro_precision=float(precision[measured].mean()),
        macro_recall=float(recall[measured].mean()),
        macro_f1=float(f1[measured].mean()),
        confusion_matrix=tuple(tuple(int(n) for n in row) for row in matrix),
    )


def multi_label_metrics(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    class_names: Sequence[str],
) -> MultiLabelMetrics:
    """Measures a multi-label model at the given per-class thresholds.

    Args:
        y_true: 0/1 matrix of true labels, shape ``(N, C)``.
        probabilities: Predicted probabilities, shape ``(N, C)``.
        thresholds: One threshold per class, shape ``(C,)``; a label is predicted
            when its probability is at or above its threshold.
        class_names: The ``C`` class names, in class_id order.

    Returns:
        The metrics; classes with no positive image are left out of the macro
        averages and the mAP and listed in ``classes_without_positives``.

    Raises:
        ValidationError: Shapes disagree, labels are not 0/1, a probability is
            outside [0, 1], a threshold is not finite, names repeat, or no images.
    """
    truth, scores = as_multi_label(y_true, probabilities)
    names = as_class_names(class_names, scores.shape[1])
    cuts = as_thresholds(thresholds, len(names))
    require_images(len(truth))

    predicted = scores >= cuts
    per_class = _label_metrics(names, truth, scores, predicted, cuts)
    micro = _precision_recall_f1(
        [(predicted & truth).sum()], [predicted.sum()], [truth.sum()]
    )
    measured = [entry for entry in per_class if entry.support > 0]
    return MultiLabelMetrics(
        class_names=names,
        count=len(truth),
        micro_precision=float(micro[0][0]),
        micro_recall=float(micro[1][0]),
        micro_f1=float(micro[2][0]),
        macro_precision=_mean_or_none([entry.precision for entry in measured]),
        macro_recall=_mean_or_none([entry.recall for entry in measured]),
        macro_f1=_mean_or_none([entry.f1 for entry in measured]),
        mean_average_precision=_mean_or_none(
            [entry.average_precision for entry in measured]
        ),
        classes_without_positives=tuple(
            entry.name for entry in per_class if entry.support == 0
        ),
        exact_match_ratio=float(np.mean(np.all(predicted == truth, axis=1))),
        per_class=per_class,
    )


def rejection_metrics(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, threshold: float
) -> RejectionMetrics:
    """Measures what a rejection threshold does: how many images get an answer, and
    how often that answer is right.

    An image is answered when its top-1 confidence is at or above ``threshold``.

    Args:
        y_true: The true class_id of each image, shape ``(N,)``.
        probabilities: Predicted probabilities, shape ``(N, C)``.
        threshold: The rejection threshold, as from
            :func:`~pigeonhole.evaluation.thresholds.rejection_threshold`.

    Returns:
        ``threshold``, ``count`` (images), ``answered`` (images answered),
        ``coverage`` (answered / count) and ``accuracy`` on the answered images
        (None when none is answered).

    Raises:
        ValidationError: Inputs as in :func:`single_label_metrics`, or no images.
    """
    labels, scores = as_single_label(y_true, probabilities)
    require_images(len(labels))
    if not np.isfinite(threshold):
        raise ValidationError(f"threshold must be a finite number; got {threshold!r}")

    answered = scores.max(axis=1) >= threshold
    correct = scores.argmax(axis=1) == labels
    count = int(answered.sum())
    return RejectionMetrics(
        threshold=float(threshold),
        count=len(labels),
        answered=count,
        coverage=count / len(labels),
        accuracy=float(correct[answered].mean()) if count else None,
    )


def ood_auroc(known_scores: npt.ArrayLike, unknown_scores: npt.ArrayLike) -> float:
    """Area under the ROC curve for telling unknown images from known ones.

    It is the chance that a random unknown image scores higher than a random known
    one, ties counting half; computed from average ranks (Mann-Whitney U).

    Args:
        known_scores: Scores of images of the project's classes, shape ``(N,)``.
        unknown_scores: Scores of images of no class, shape ``(M,)``. A higher
            score means more likely unknown (for example ``1 - confidence``).

    Returns:
        The AUROC: 1.0 separates perfectly, 0.5 is chance.

    Raises:
        ValidationError: Either set is empty, not 1-D, or holds NaN or infinity.
    """
    known = as_scores(known_scores, "known_scores")
    unknown = as_scores(unknown_scores, "unknown_scores")
    ranks = rankdata(np.concatenate([known, unknown]))
    unknown_rank_sum = float(ranks[len(known) :].sum())
    wins = unknown_rank_sum - len(unknown) * (len(unknown) + 1) / 2
    return wins / (len(known) * len(unknown))


def confusion_matrix(
    y_true: npt.ArrayLike, y_predicted: npt.ArrayLike, n_classes: int
) -> IntArray:
    """Counts of (true, predicted) class_id pairs; rows are true, columns predicted."""
    pairs = np.asarray(y_true, np.int64) * n_classes + np.asarray(y_predicted, np.int64)
    counts = np.bincount(pairs, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def average_precision(truth: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Average precision: precision summed over the steps in recall.

    Tied scores form a single step, as in scikit-learn's ``average_precision_score``.

    Args:
        truth: Whether each image has the class, shape ``(N,)``; at least one must.
        scores: The class's probability for each image, shape ``(N,)``.
    """
    _, true_positives, false_positives = cumulative_counts(truth, scores)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def cumulative_counts(
    truth: npt.ArrayLike, scores: npt.ArrayLike
) -> tuple[FloatArray, IntArray, IntArray]:
    """True and false positives at each distinct score used as threshold.

    Args:
        truth: Whether each image is a positive, shape ``(N,)``.
        scores: Each image's score, shape ``(N,)``, with ``N`` at least 1.

    Returns:
        ``(thresholds, true_positives, false_positives)``: the distinct scores from
        highest to lowest, and the counts of images scoring at or above each.
    """
    values = np.asarray(scores, np.float64)
    order = np.argsort(-values, kind="stable")
    ranked_scores = values[order]
    ranked_truth = np.asarray(truth, bool)[order]
    last_of_tie = np.append(np.flatnonzero(np.diff(ranked_scores)), len(values) - 1)
    true_positives = np.cumsum(ranked_truth, dtype=np.int64)[last_of_tie]
    return ranked_scores[last_of_tie], true_positives, last_of_tie + 1 - true_positives


def _precision_recall_f1(
    true_positives: npt.ArrayLike, predicted: npt.ArrayLike, support: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    hits = np.asarray(true_positives, np.float64)
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * hits, np.add(predicted, support))
    return precision, recall, f1


def _ratio(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> FloatArray:
    top = np.asarray(numerator, np.float64)
    bottom = np.asarray(denominator, np.float64)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def _class_metrics(
    names: tuple[str, ...],
    precision: FloatArray,
    recall: FloatArray,
    f1: FloatArray,
    support: npt.NDArray[np.integer[Any]],
) -> tuple[ClassMetrics, ...]:
    return tuple(
        ClassMetrics(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    )


def _top_k_accuracy(labels: IntArray, scores: FloatArray, k: int) -> float | None:
    if scores.shape[1] <= k:
        return None
    true_scores = scores[np.arange(len(labels)), labels]
    # Ties with the true class count in its favour, so the result is independent
    # of class order.
    higher = (scores > true_scores[:, None]).sum(axis=1)
    return float(np.mean(higher < k))


def _label_metrics(
    names: tuple[str, ...],
    truth: BoolArray,
    scores: FloatArray,
    predicted: BoolArray,
    cuts: FloatArray,
) -> tuple[LabelMetrics, ...]:
    support = truth.sum(axis=0)
    precision, recall, f1 = _precision_recall_f1(
        (predicted & truth).sum(axis=0), predicted.sum(axis=0), support
    )
    return tuple(
        LabelMetrics(
            **asdict(entry),
            average_precision=(
                average_precision(truth[:, c], scores[:, c]) if entry.support else None
            ),
            threshold=float(cuts[c]),
        )
        for c, entry in enumerate(_class_metrics(names, precision, recall, f1, support))
    )


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None

"""Checked arrays for the metrics: labels, probabilities and thresholds, validated.

Every evaluation function takes array-likes from callers (numpy, lists, tensors turned
into numpy) and turns them into float64 or int64 arrays here, with a
:class:`~pigeonhole.errors.ValidationError` that names the argument and the shape it
should have when they do not fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pigeonhole.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def as_single_label(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    name: str = "probabilities",
    unit_range: bool = True,
) -> tuple[IntArray, FloatArray]:
    """Checks and converts single-label inputs; shared by the evaluation modules.

    Args:
        y_true: Class_ids, shape ``(N,)``.
        probabilities: Scores, shape ``(N, C)``.
        name: What to call ``probabilities`` in messages (``logits``, say).
        unit_range: Whether scores must lie in [0, 1].

    Returns:
        ``(class_ids as int64, scores as float64)``.

    Raises:
        ValidationError: Naming the bad shape or value.
    """
    scores = as_matrix(probabilities, name, unit_range=unit_range)
    labels = as_class_ids(y_true, scores.shape[1])
    if len(labels) != len(scores):
        raise ValidationError(
            f"y_true has {len(labels)} images but {name} has {len(scores)} rows "
            f"(shape {scores.shape}); pass one row per image"
        )
    return labels, scores


def as_multi_label(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    name: str = "probabilities",
    unit_range: bool = True,
) -> tuple[BoolArray, FloatArray]:
    """Checks and converts multi-label inputs; shared by the evaluation modules.

    Args:
        y_true: 0/1 label matrix, shape ``(N, C)``.
        probabilities: Scores, shape ``(N, C)``.
        name: What to call ``probabilities`` in messages.
        unit_range: Whether scores must lie in [0, 1].

    Returns:
        ``(labels as bool, scores as float64)``.

    Raises:
        ValidationError: Naming the bad shape or value.
    """
    scores = as_matrix(probabilities, name, unit_range=unit_range)
    truth = np.asarray(y_true)
    if truth.shape != scores.shape:
        raise ValidationError(
            f"y_true has shape {truth.shape} but {name} has shape {scores.shape}; "
            "multi-label y_true is a 0/1 matrix of (images, classes)"
        )
    if not np.isin(truth, (0, 1)).all():
        bad = truth[~np.isin(truth, (0, 1))].flat[0].item()
        raise ValidationError(f"y_true must hold only 0 and 1; found {bad!r}")
    return truth.astype(bool), scores


def as_class_names(class_names: Sequence[str], n_classes: int) -> tuple[str, ...]:
    """Checks that there is one distinct name per column."""
    names = tuple(str(name) for name in class_names)
    if len(names) != n_classes:
        raise ValidationError(
            f"got {len(names)} class_names for {n_classes} probability columns; "
            "pass one name per class, in class_id order"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"class_names must be distinct; repeated: {repeated}")
    return names


def as_matrix(values: npt.ArrayLike, name: str, *, unit_range: bool) -> FloatArray:
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"{name} must be numeric; {error}") from error
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValidationError(
            f"{name} must have shape (images, classes) with at least one class; "
            f"got shape {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise ValidationError(f"{name} holds NaN or infinite values")
    if unit_range and matrix.size and (matrix.min() < 0 or matrix.max() > 1):
        raise ValidationError(
            f"{name} must lie in [0, 1]; got values from {matrix.min():.4g} to "
            f"{matrix.max():.4g}. Pass softmax or sigmoid outputs, not logits"
        )
    return matrix


def as_class_ids(y_true: npt.ArrayLike, n_classes: int) -> IntArray:
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise ValidationError(
            f"y_true must be 1-D class_ids of shape (images,); got shape {labels.shape}"
        )
    integral = labels.dtype.kind in "biu" or (
        labels.dtype.kind == "f" and np.array_equal(labels, np.round(labels))
    )
    if not integral:
        raise ValidationError(f"y_true must hold integer class_ids; got {labels.dtype}")
    ids = labels.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n_classes):
        bad = ids[(ids < 0) | (ids >= n_classes)][0]
        raise ValidationError(
            f"y_true holds class_id {bad} but there are {n_classes} classes "
            f"(0..{n_classes - 1})"
        )
    return ids


def as_thresholds(thresholds: npt.ArrayLike, n_classes: int) -> FloatArray:
    cuts = np.asarray(thresholds, dtype=np.float64)
    if cuts.shape != (n_classes,):
        raise ValidationError(
            f"thresholds must have shape ({n_classes},), one per class; "
            f"got shape {cuts.shape}"
        )
    if not np.isfinite(cuts).all():
        raise ValidationError(f"thresholds must be finite; got {cuts.tolist()}")
    return cuts


def as_scores(values: npt.ArrayLike, name: str) -> FloatArray:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValidationError(
            f"{name} must be a non-empty 1-D array; got shape {scores.shape}"
        )
    if not np.isfinite(scores).all():
        raise ValidationError(f"{name} holds NaN or infinite values")
    return scores


def require_images(count: int) -> None:
    if count == 0:
        raise ValidationError(
            "there are 0 images to measure; the split is empty, so put images in "
            "it or skip the evaluation"
        )

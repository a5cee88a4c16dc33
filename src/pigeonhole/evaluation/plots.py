"""Evaluation plots as PNG files: confusion matrix, reliability, training curves.

Figures are :class:`matplotlib.figure.Figure` objects with an Agg canvas attached, so
nothing here selects a backend or touches pyplot's global state. Each function
creates the parent folder if needed, replaces an existing file and returns the path.

Example:
    >>> from pathlib import Path
    >>> path = confusion_matrix_plot([[5, 1], [2, 7]], ["cat", "dog"],
    ...                              Path("confusion.png"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.calibration import ReliabilityCurve
from pigeonhole.evaluation.metrics import as_class_names

_DPI = 100
#: Cells are annotated with their count up to this many classes.
_ANNOTATED_CLASSES = 25
#: Longer class names are cut to this many characters on the axes.
_LABEL_LENGTH = 24
#: The series :func:`training_curves_plot` draws, with their axis.
_LOSSES = ("train_loss", "valid_loss")
_METRIC = "valid_metric"


def confusion_matrix_plot(
    matrix: npt.ArrayLike, class_names: Sequence[str], path: Path
) -> Path:
    """Draws a confusion matrix: colours are shares of each true class, text counts.

    Row-normalised colours keep rare classes readable next to common ones. Fonts
    shrink as classes grow, counts are written up to 25 classes and class names
    longer than 24 characters are cut.

    Args:
        matrix: Counts of shape ``(C, C)``, rows true and columns predicted, as in
            :attr:`~pigeonhole.evaluation.metrics.SingleLabelMetrics.confusion_matrix`.
        class_names: The ``C`` class names, in class_id order.
        path: The PNG file to write.

    Returns:
        ``path``.

    Raises:
        ValidationError: The matrix is not square, not counts, or its size differs
            from the number of class names.
    """
    counts = _as_counts(matrix)
    names = as_class_names(class_names, counts.shape[0])
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)

    size = len(names)
    side = min(4.0 + 0.32 * size, 22.0)
    figure = _figure(side + 1.5, side)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class", shrink=0.8)
    # Fonts follow the cell size, in points, leaving room for labels around it.
    cell = 72 * (side - 2.5) / size
    positions = list(range(size))
    labels = [_short(name) for name in names]
    axes.set_xticks(positions, labels, rotation=90 if size > 8 else 45, ha="right")
    axes.set_yticks(positions, labels)
    axes.tick_params(labelsize=min(10.0, 0.45 * cell))
    if size <= _ANNOTATED_CLASSES:
        _annotate(axes, counts, shares, min(10.0, 0.35 * cell))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"Confusion matrix ({int(counts.sum())} images)")
    return _save(figure, path)


def reliability_plot(
    curve_before: ReliabilityCurve,
    curve_after: ReliabilityCurve | None,
    path: Path,
    ece_before: float | None = None,
    ece_after: float | None = None,
) -> Path:
    """Draws accuracy against confidence before and after temperature scaling.

    Above: per-bin accuracy against mean confidence, with the diagonal of perfect
    calibration. Below: images per bin.

    Args:
        curve_before: The curve of the uncalibrated model.
        curve_after: The curve after temperature scaling, or None if not fitted.
        path: The PNG file to write.
        ece_before: The ECE shown in the legend; defaults to ``curve_before.ece``.
        ece_after: The ECE shown in the legend; defaults to ``curve_after.ece``.

    Returns:
        ``path``.
    """
    figure = _figure(6.0, 7.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    curves = [("before", curve_before, ece_before, "#dd8452")]
    if curve_after is not None:
        curves.append(("after", curve_after, ece_after, "#4c72b0"))
    for label, curve, ece, colour in curves:
        shown = curve.ece if ece is None else ece
        _draw_curve(top, bottom, curve, f"{label} (ECE {shown:.3f})", colour)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title("Reliability (dashed: perfectly calibrated)")
    top.legend(loc="upper left")
    bottom.set_xlabel("top-1 confidence")
    bottom.set_ylabel("images")
    return _save(figure, path)


def training_curves_plot(history: Sequence[Mapping[str, float]], path: Path) -> Path:
    """Draws losses and the validation metric per epoch.

    Every row needs ``epoch``; ``train_loss``, ``valid_loss`` (left axis) and
    ``valid_metric`` (right axis) are drawn where present and finite. Other keys
    are ignored.

    Args:
        history: One mapping per epoch, in any order.
        path: The PNG file to write.

    Returns:
        ``path``.

    Raises:
        ValidationError: The history is empty, a row has no ``epoch``, or no row
            holds any of the drawn series.
    """
    rows = sorted(_check_history(history), key=lambda row: row["epoch"])
    figure = _figure(7.0, 4.5)
    axes = figure.add_subplot()
    lines: list[Line2D] = []
    for key in _LOSSES:
        lines += _draw_series(axes, rows, key, "-")
    if lines:
        axes.set_ylabel("loss")
    if any(_has_value(row, _METRIC) for row in rows):
        metric_axes = axes.twinx() if lines else axes
        metric_axes.set_ylabel("valid metric")
        lines += _draw_series(metric_axes, rows, _METRIC, "--", colour="#55a868")
    if not lines:
        raise ValidationError(
            f"history has none of {[*_LOSSES, _METRIC]} in any row; nothing to plot"
        )
    axes.set_xlabel("epoch")
    axes.set_title("Training curves")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Below the axes, so neither axis's lines run over it.
    figure.legend(
        lines,
        [str(line.get_label()) for line in lines],
        loc="outside lower center",
        ncols=len(lines),
    )
    return _save(figure, path)


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI)
    return path


def _short(name: str) -> str:
    return name if len(name) <= _LABEL_LENGTH else name[: _LABEL_LENGTH - 1] + "…"


def _as_counts(matrix: npt.ArrayLike) -> npt.NDArray[np.int64]:
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
        raise ValidationError(
            f"confusion matrix must be square (classes, classes); got shape "
            f"{counts.shape}"
        )
    if counts.dtype.kind not in "biuf" or (counts < 0).any():
        raise ValidationError("confusion matrix must hold non-negative counts")
    return counts.astype(np.int64)


def _annotate(
    axes: Axes,
    counts: npt.NDArray[np.int64],
    shares: npt.NDArray[np.float64],
    font: float,
) -> None:
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            color=colour,
            fontsize=font,
        )


def _draw_curve(
    top: Axes, bottom: Axes, curve: ReliabilityCurve, label: str, colour: str
) -> None:
    filled = [
        (confidence, accuracy)
        for confidence, accuracy in zip(curve.confidence, curve.accuracy, strict=True)
        if confidence is not None and accuracy is not None
    ]
    if filled:
        xs, ys = zip(*filled, strict=True)
        top.plot(xs, ys, marker="o", color=colour, label=label)
    else:
        top.plot([], [], color=colour, label=label)
    edges = curve.bin_edges
    bottom.stairs(curve.count, edges, color=colour, alpha=0.8)


def _check_history(history: Sequence[Mapping[str, float]]) -> list[Mapping[str, float]]:
    rows = list(history)
    if not rows:
        raise ValidationError("history is empty; train at least one epoch to plot it")
    for index, row in enumerate(rows):
        if "epoch" not in row:
            raise ValidationError(
                f"history row {index} has no 'epoch' key; got keys {sorted(row)}"
            )
    return rows


def _draw_series(
    axes: Axes,
    rows: list[Mapping[str, float]],
    key: str,
    style: str,
    colour: str | None = None,
) -> list[Line2D]:
    points = [(row["epoch"], row[key]) for row in rows if _has_value(row, key)]
    if not points:
        return []
    epochs, values = zip(*points, strict=True)
    return list(axes.plot(epochs, values, style, marker=".", color=colour, label=key))


def _has_value(row: Mapping[str, float], key: str) -> bool:
    value = row.get(key)
    return value is not None and math.isfinite(value)

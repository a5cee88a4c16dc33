"""A health report as PNG plots.

Figures are built from :class:`matplotlib.figure.Figure` with an Agg canvas attached
directly, so nothing here selects a backend or touches pyplot's global state: the
plots can be drawn inside a server or a test run that uses matplotlib for other work.

Example:
    >>> from pathlib import Path
    >>> paths = write_plots(report, Path("health"))  # doctest: +SKIP
    >>> [path.name for path in paths]  # doctest: +SKIP
    ['class_balance.png', 'image_sizes.png']
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pigeonhole.datasets.health import (
    SPLIT_COLUMNS,
    Cooccurrence,
    HealthReport,
    SizeStats,
)

#: Split colours, in :data:`~pigeonhole.datasets.health.SPLIT_COLUMNS` order.
_SPLIT_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#b0b0b0")
#: Above this max/min ratio on either side, the size scatter uses log axes.
_LOG_RANGE = 10.0
#: Heatmap cells are annotated with their count up to this many classes.
_ANNOTATED_CLASSES = 20
_DPI = 100


def write_plots(report: HealthReport, folder: Path) -> list[Path]:
    """Draws the report's plots as PNG files in ``folder``, creating it if needed.

    ``class_balance.png`` is always written; ``image_sizes.png`` when there are
    images, drawn from ``report.sizes.sizes``; ``label_cooccurrence.png`` for
    multi-label projects. Existing files of these names are replaced.

    Args:
        report: What :func:`~pigeonhole.datasets.health.compute_health` returned.
        folder: Where to write the files.

    Returns:
        The paths written, in the order above.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = {"class_balance.png": _class_balance(report)}
    if report.sizes is not None:
        figures["image_sizes.png"] = _image_sizes(report.sizes)
    if report.cooccurrence is not None:
        figures["label_cooccurrence.png"] = _cooccurrence(report.cooccurrence)
    paths = []
    for name, figure in figures.items():
        path = folder / name
        figure.savefig(path, format="png", dpi=_DPI)
        paths.append(path)
    return paths


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _class_balance(report: HealthReport) -> Figure:
    table = report.class_split
    figure = _figure(min(4 + 0.5 * len(table.class_names), 30), 5)
    axes = figure.add_subplot()
    positions = list(range(len(table.class_names)))
    bottoms = [0] * len(positions)
    for column, (split, colour) in enumerate(
        zip(SPLIT_COLUMNS, _SPLIT_COLOURS, strict=True)
    ):
        heights = [row[column] for row in table.counts]
        if any(heights):
            axes.bar(positions, heights, bottom=bottoms, label=split, color=colour)
            bottoms = [low + high for low, high in zip(bottoms, heights, strict=True)]
    axes.set_xticks(positions, table.class_names, rotation=45, ha="right")
    axes.set_xlabel("class")
    axes.set_ylabel("images")
    axes.set_title(f"Images per class and split ({report.image_count} images)")
    if any(bottoms):
        axes.legend(title="split")
    return figure


def _image_sizes(sizes: SizeStats) -> Figure:
    figure = _figure(6, 6)
    axes = figure.add_subplot()
    widths = [width for width, _ in sizes.sizes]
    heights = [height for _, height in sizes.sizes]
    alpha = 0.6 if len(widths) < 1000 else 0.2
    axes.scatter(widths, heights, s=12, alpha=alpha, edgecolors="none")
    if _wide(widths) or _wide(heights):
        axes.set_xscale("log")
        axes.set_yscale("log")
    low, high = min(*widths, *heights), max(*widths, *heights)
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    axes.set_xlabel("width (px)")
    axes.set_ylabel("height (px)")
    axes.set_title(f"Image sizes ({len(widths)} images; dashed: square)")
    return figure


def _wide(values: list[int]) -> bool:
    return max(values) / max(min(values), 1) > _LOG_RANGE


def _cooccurrence(cooccurrence: Cooccurrence) -> Figure:
    names = cooccurrence.class_names
    side = min(3 + 0.5 * len(names), 30)
    figure = _figure(side + 1, side)
    axes = figure.add_subplot()
    image = axes.imshow(cooccurrence.counts or [[0]], cmap="Blues")
    figure.colorbar(image, ax=axes, label="images")
    positions = list(range(len(names)))
    axes.set_xticks(positions, names, rotation=45, ha="right")
    axes.set_yticks(positions, names)
    if len(names) <= _ANNOTATED_CLASSES:
        _annotate(axes, cooccurrence.counts)
    axes.set_title("Label co-occurrence (images with both labels)")
    return figure


def _annotate(axes: Axes, counts: tuple[tuple[int, ...], ...]) -> None:
    most = max((max(row) for row in counts if row), default=0)
    for row, values in enumerate(counts):
        for column, count in enumerate(values):
            colour = "white" if most and count > most / 2 else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour)

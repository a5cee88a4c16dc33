"""A health report as plain text for a terminal.

Sections run from the overview to the details: counts per class and split, balance,
sizes, labels, co-occurrence, duplicates, leakage, then the warnings last so that they
are what a terminal leaves on screen. Columns are aligned with spaces and there are no
colour codes, so the CLI may wrap or style the text as it likes.

Example:
    >>> from pigeonhole.datasets.health import compute_health
    >>> report = compute_health(images, names, project_type,
    ...                         near_duplicate_distance=4)  # doctest: +SKIP
    >>> print(render_text(report))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from pigeonhole.datasets.health import (
    TEXT_LIST_LIMIT,
    ConflictKind,
    GroupMember,
    HealthReport,
    LabelConflict,
    NearDuplicateGroup,
)

_BAR_WIDTH = 30


def render_text(report: HealthReport) -> str:
    """Renders ``report`` as aligned plain text, long lists cut to a few entries.

    Args:
        report: What :func:`~pigeonhole.datasets.health.compute_health` returned.

    Returns:
        The text, ending with a newline.
    """
    sections = [
        _summary(report),
        _class_table(report),
        _balance(report),
        _sizes(report),
        _labels(report),
        _cooccurrence(report),
        _exact_duplicates(report),
        _near_duplicates(report),
        _warnings(report),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _summary(report: HealthReport) -> list[str]:
    return [
        f"Dataset health: {_n(report.image_count, 'image')}, "
        f"{_n(len(report.class_names), 'class')}, {report.project_type.value}"
    ]


def _class_table(report: HealthReport) -> list[str]:
    table = report.class_split
    if not table.class_names:
        return ["Images per class and split: the project has no classes"]
    rows = [["class", *table.columns, "total"]]
    for name, row in zip(table.class_names, table.counts, strict=True):
        rows.append([name, *map(str, row), str(sum(row))])
    rows.append(["all images", *map(str, table.split_totals), str(report.image_count)])
    lines = ["Images per class and split", *_aligned(rows)]
    if report.project_type.is_multi_label:
        lines.append("  (an image counts once in each class it is labelled with)")
    return lines


def _balance(report: HealthReport) -> list[str]:
    imbalance = report.imbalance
    if imbalance.ratio is None:
        lines = ["Class balance: no class has images"]
    else:
        lines = [
            f"Class balance: largest {imbalance.largest!r} "
            f"({imbalance.largest_count}), smallest {imbalance.smallest!r} "
            f"({imbalance.smallest_count}), "
            f"ratio {imbalance.ratio:.1f}x"
        ]
    if imbalance.empty_classes:
        lines.append("  classes with no images: " + ", ".join(imbalance.empty_classes))
    return lines


def _sizes(report: HealthReport) -> list[str]:
    sizes = report.sizes
    if sizes is None:
        return ["Image sizes: no images"]
    rows = [["", "min", "median", "max"]]
    for name, spread, digits in (
        ("width (px)", sizes.width, 0),
        ("height (px)", sizes.height, 0),
        ("megapixels", sizes.megapixels, 2),
    ):
        values = (spread.minimum, spread.median, spread.maximum)
        rows.append([name, *(f"{value:,.{digits}f}" for value in values)])
    most = max(count for _, count in sizes.aspect_buckets)
    buckets = [
        [label, str(count), "#" * round(_BAR_WIDTH * count / most)]
        for label, count in sizes.aspect_buckets
    ]
    return [
        "Image sizes",
        *_aligned(rows),
        "",
        f"Aspect ratio (width / height), median {sizes.median_aspect_ratio:.2f}",
        *_aligned(buckets, left=(0, 2)),
    ]


def _labels(report: HealthReport) -> list[str]:
    lines = [f"Unlabelled images: {report.unlabelled_count}"]
    if report.unlabelled_ids:
        shown = report.unlabelled_ids[:TEXT_LIST_LIMIT]
        more = report.unlabelled_count - len(shown)
        ids = ", ".join(map(str, shown)) + (f" ... and {more} more" if more else "")
        lines.append(f"  ids: {ids}")
    conflicts = report.label_conflicts
    lines.append(f"Conflicting labels: {len(conflicts)}")
    lines += _cut([f"  {_conflict(conflict)}" for conflict in conflicts])
    return lines


def _conflict(conflict: LabelConflict) -> str:
    name = f"{conflict.filename} (id {conflict.image_id})"
    if conflict.kind is ConflictKind.MULTIPLE_LABELS:
        return f"{name}: several labels in a single-label project: " + _labels_of(
            conflict.labels
        )
    pairs = zip(conflict.sources, conflict.source_labels, strict=True)
    listed = "; ".join(f"{source} [{_labels_of(labels)}]" for source, labels in pairs)
    return f"{name}: sources disagree: {listed}"


def _cooccurrence(report: HealthReport) -> list[str]:
    cooccurrence = report.cooccurrence
    if cooccurrence is None:
        return []
    rows = [["", *cooccurrence.class_names]]
    for name, row in zip(cooccurrence.class_names, cooccurrence.counts, strict=True):
        rows.append([name, *map(str, row)])
    cardinality = [["labels", "images"]] + [
        [str(size), str(count)] for size, count in enumerate(cooccurrence.cardinality)
    ]
    return [
        "Label co-occurrence (images with both labels; the diagonal is per class)",
        *_aligned(rows),
        "",
        "Labels per image",
        *_aligned(cardinality, left=()),
    ]


def _exact_duplicates(report: HealthReport) -> list[str]:
    duplicates = report.exact_duplicates
    count = _n(len(duplicates), "image")
    lines = [f"Exact duplicates: {count} imported from several paths"]
    return lines + _cut(
        [
            f"  {item.filename} (id {item.image_id}): {', '.join(item.sources)}"
            for item in duplicates
        ]
    )


def _near_duplicates(report: HealthReport) -> list[str]:
    groups = report.near_duplicates
    images = sum(len(group.members) for group in groups)
    return [
        f"Near-duplicates (hashes within {report.near_duplicate_distance} bits): "
        f"{_n(len(groups), 'group')}, {_n(images, 'image')}",
        *_groups(groups),
        f"Near-duplicate groups across splits (leakage): {len(report.leaking_groups)}",
        *_groups(report.leaking_groups),
        f"Near-duplicate groups with different labels: "
        f"{len(report.mislabelled_groups)}",
        *_groups(report.mislabelled_groups),
    ]


def _groups(groups: Sequence[NearDuplicateGroup]) -> list[str]:
    return _cut(
        [
            f"  {number}. " + "; ".join(_member(member) for member in group.members)
            for number, group in enumerate(groups, start=1)
        ]
    )


def _member(member: GroupMember) -> str:
    split = member.split or "unassigned"
    labels = _labels_of(member.labels)
    return f"{member.filename} (id {member.image_id}, {split}) [{labels}]"


def _warnings(report: HealthReport) -> list[str]:
    if not report.warnings:
        return ["Warnings: none"]
    return [f"Warnings ({len(report.warnings)})"] + [
        f"  - {warning}" for warning in report.warnings
    ]


def _n(count: int, noun: str) -> str:
    plural = f"{noun}es" if noun.endswith("s") else f"{noun}s"
    return f"{count} {noun}" if count == 1 else f"{count} {plural}"


def _labels_of(labels: Sequence[str]) -> str:
    return ", ".join(labels) if labels else "unlabelled"


def _cut(lines: list[str], limit: int = TEXT_LIST_LIMIT) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"  ... and {len(lines) - limit} more"]


def _aligned(rows: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
    """Pads columns to their widest cell; ``left`` ones align left, others right."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.ljust(width) if column in left else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]

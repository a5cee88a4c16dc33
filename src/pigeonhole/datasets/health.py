"""Dataset health: what to fix before training, computed from plain image records.

The storage layer builds one :class:`HealthImage` per image; everything here is pure,
so one report serves the CLI (:func:`render_text`), the server
(:meth:`HealthReport.to_dict`) and the plots (:mod:`pigeonhole.datasets.health_plots`).

The checks: images per class and split, class imbalance, image sizes and aspect
ratios, unlabelled images, exact duplicates (the same bytes imported from several
paths), near-duplicates by perceptual hash, near-duplicates that straddle splits
(leakage that flatters the test score), conflicting labels and, for multi-label
projects, label co-occurrence.

Example:
    >>> from pigeonhole.domain import ProjectType
    >>> image = HealthImage(1, "a.jpg", ("cats/a.jpg",), (("cat",),), ("cat",),
    ...                     "train", 640, 480, "c3a1f00d9e7b2461")
    >>> report = compute_health([image], ["cat", "dog"], ProjectType.SINGLE_LABEL,
    ...                         near_duplicate_distance=4)
    >>> report.imbalance.empty_classes
    ('dog',)
"""

from __future__ import annotations

import re
import statistics
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pigeonhole.datasets.grouping import near_duplicate_groups
from pigeonhole.datasets.health_report import (
    ASPECT_BUCKETS,
    IMBALANCE_WARNING_RATIO,
    MIN_IMAGES_PER_CLASS,
    SPLIT_COLUMNS,
    TEXT_LIST_LIMIT,
    UNASSIGNED,
    UNLABELLED_ID_LIMIT,
    ClassSplitTable,
    ConflictKind,
    Cooccurrence,
    ExactDuplicate,
    GroupMember,
    HealthImage,
    HealthReport,
    Imbalance,
    LabelConflict,
    NearDuplicateGroup,
    SizeStats,
    Spread,
    label_sets,
)
from pigeonhole.domain import SPLITS, ProjectType, Split
from pigeonhole.errors import ValidationError

__all__ = [
    "ASPECT_BUCKETS",
    "IMBALANCE_WARNING_RATIO",
    "MIN_IMAGES_PER_CLASS",
    "SPLIT_COLUMNS",
    "TEXT_LIST_LIMIT",
    "UNASSIGNED",
    "UNLABELLED_ID_LIMIT",
    "ClassSplitTable",
    "ConflictKind",
    "Cooccurrence",
    "ExactDuplicate",
    "GroupMember",
    "HealthImage",
    "HealthReport",
    "Imbalance",
    "LabelConflict",
    "NearDuplicateGroup",
    "SizeStats",
    "Spread",
    "compute_health",
    "render_text",
    "write_plots",
]

_HEX_HASH = re.compile(r"[0-9a-fA-F]{1,16}")


def compute_health(
    images: Sequence[HealthImage],
    class_names: Sequence[str],
    project_type: ProjectType,
    *,
    near_duplicate_distance: int,
) -> HealthReport:
    """Checks a project's images for what would hurt training or flatter the test.

    Args:
        images: One record per image.
        class_names: The project's classes, in order.
        project_type: Single- or multi-label; multi-label adds co-occurrence and
            allows several labels per image.
        near_duplicate_distance: Largest Hamming distance, in bits, between the
            perceptual hashes of two near-duplicates.

    Returns:
        The report, with human-readable ``warnings``.

    Raises:
        ValidationError: Two records share an image id, a split is not train, valid
            or test, or ``near_duplicate_distance`` is out of range.
    """
    project_type = ProjectType.parse(project_type)
    names = tuple(class_names)
    images = _checked(images)
    table = _class_split_table(images, names)
    hashed = [image for image in images if _HEX_HASH.fullmatch(image.phash)]
    unlabelled = [image.image_id for image in images if not image.labels]
    multi_label = project_type.is_multi_label
    report = HealthReport(
        project_type=project_type,
        class_names=names,
        near_duplicate_distance=near_duplicate_distance,
        image_count=len(images),
        class_split=table,
        imbalance=_imbalance(names, table.class_totals),
        sizes=_size_stats(images),
        unlabelled_count=len(unlabelled),
        unlabelled_ids=tuple(unlabelled[:UNLABELLED_ID_LIMIT]),
        exact_duplicates=_exact_duplicates(images),
        near_duplicates=_near_duplicates(hashed, near_duplicate_distance),
        label_conflicts=_label_conflicts(images, project_type),
        cooccurrence=_cooccurrence(images, names) if multi_label else None,
    )
    return replace(report, warnings=_warnings(report, images, len(hashed)))


def render_text(report: HealthReport) -> str:
    """The report as plain text for a terminal; see :mod:`.health_text`."""
    from pigeonhole.datasets.health_text import render_text as render

    return render(report)


def write_plots(report: HealthReport, folder: Path) -> list[Path]:
    """Draws the report's PNG plots into ``folder``; see :mod:`.health_plots`.

    Matplotlib is imported here, not with this module, so that computing and
    printing a report never pays for it.
    """
    from pigeonhole.datasets.health_plots import write_plots as write

    return write(report, folder)


def _checked(images: Sequence[HealthImage]) -> list[HealthImage]:
    """Normalises splits (``val`` to ``valid``) and refuses repeated image ids."""
    seen = Counter(image.image_id for image in images)
    repeated = sorted(image_id for image_id, count in seen.items() if count > 1)
    if repeated:
        raise ValidationError(
            f"image ids {repeated[:10]} appear more than once in the health records; "
            "pass one record per image, with every source in its sources"
        )
    return [
        image
        if image.split is None or image.split in SPLIT_COLUMNS[:-1]
        else replace(image, split=Split.parse(image.split).value)
        for image in images
    ]


def _class_split_table(
    images: Sequence[HealthImage], names: tuple[str, ...]
) -> ClassSplitTable:
    row_of = {name: row for row, name in enumerate(names)}
    counts = [[0] * len(SPLIT_COLUMNS) for _ in names]
    totals = [0] * len(SPLIT_COLUMNS)
    for image in images:
        column = SPLIT_COLUMNS.index(image.split or UNASSIGNED)
        totals[column] += 1
        for label in set(image.labels):
            if label in row_of:
                counts[row_of[label]][column] += 1
    return ClassSplitTable(names, tuple(map(tuple, counts)), tuple(totals))


def _imbalance(names: tuple[str, ...], totals: tuple[int, ...]) -> Imbalance:
    pairs = list(zip(names, totals, strict=True))
    empty = tuple(name for name, total in pairs if not total)
    present = [pair for pair in pairs if pair[1]]
    if not present:
        return Imbalance(None, None, 0, None, 0, empty)
    largest = max(present, key=lambda pair: pair[1])
    smallest = min(present, key=lambda pair: pair[1])
    ratio = largest[1] / smallest[1]
    return Imbalance(ratio, *largest, *smallest, empty)


def _size_stats(images: Sequence[HealthImage]) -> SizeStats | None:
    if not images:
        return None
    ratios = [image.width / image.height for image in images]
    bounds = [bound for _, bound in ASPECT_BUCKETS[:-1]]
    buckets = Counter(bisect_right(bounds, ratio) for ratio in ratios)
    return SizeStats(
        width=_spread([image.width for image in images]),
        height=_spread([image.height for image in images]),
        megapixels=_spread([image.width * image.height / 1e6 for image in images]),
        aspect_buckets=tuple(
            (label, buckets[index]) for index, (label, _) in enumerate(ASPECT_BUCKETS)
        ),
        median_aspect_ratio=statistics.median(ratios),
        sizes=tuple((image.width, image.height) for image in images),
    )


def _spread(values: Sequence[float]) -> Spread:
    return Spread(min(values), statistics.median(values), max(values))


def _exact_duplicates(images: Sequence[HealthImage]) -> tuple[ExactDuplicate, ...]:
    return tuple(
        ExactDuplicate(image.image_id, image.filename, image.sources)
        for image in images
        if len(set(image.sources)) > 1
    )


def _near_duplicates(
    hashed: Sequence[HealthImage], max_distance: int
) -> tuple[NearDuplicateGroup, ...]:
    groups = near_duplicate_groups([image.phash for image in hashed], max_distance)
    return tuple(
        NearDuplicateGroup(tuple(_member(hashed[index]) for index in group))
        for group in groups
    )


def _member(image: HealthImage) -> GroupMember:
    return GroupMember(image.image_id, image.filename, image.split, image.labels)


def _label_conflicts(
    images: Sequence[HealthImage], project_type: ProjectType
) -> tuple[LabelConflict, ...]:
    conflicts = []
    for image in images:
        kinds = []
        if not project_type.is_multi_label and len(set(image.labels)) > 1:
            kinds.append(ConflictKind.MULTIPLE_LABELS)
        if len(label_sets(image.source_labels)) > 1:
            kinds.append(ConflictKind.SOURCES_DISAGREE)
        conflicts += [
            LabelConflict(
                image.image_id,
                image.filename,
                kind,
                image.labels,
                image.sources,
                image.source_labels,
            )
            for kind in kinds
        ]
    return tuple(conflicts)


def _cooccurrence(
    images: Sequence[HealthImage], names: tuple[str, ...]
) -> Cooccurrence:
    index = {name: position for position, name in enumerate(names)}
    counts = [[0] * len(names) for _ in names]
    cardinality: Counter[int] = Counter()
    for image in images:
        labels = set(image.labels)
        cardinality[len(labels)] += 1
        rows = sorted(index[label] for label in labels if label in index)
        for row in rows:
            for column in rows:
                counts[row][column] += 1
    most = max(cardinality, default=0)
    return Cooccurrence(
        names,
        tuple(map(tuple, counts)),
        tuple(cardinality[size] for size in range(most + 1)),
    )


def _warnings(
    report: HealthReport, images: Sequence[HealthImage], hashed: int
) -> tuple[str, ...]:
    return (
        *_class_warnings(report),
        *_label_warnings(report, images),
        *_split_warnings(report),
        *_hash_warnings(len(images) - hashed),
    )


def _class_warnings(report: HealthReport) -> list[str]:
    found = [f"class {name!r} has no images" for name in report.imbalance.empty_classes]
    for name, total in zip(
        report.class_names, report.class_split.class_totals, strict=True
    ):
        if 0 < total < MIN_IMAGES_PER_CLASS:
            found.append(
                f"class {name!r} has {_n(total, 'image')}, under {MIN_IMAGES_PER_CLASS}"
            )
    imbalance = report.imbalance
    if imbalance.ratio is not None and imbalance.ratio > IMBALANCE_WARNING_RATIO:
        found.append(
            f"classes are imbalanced {imbalance.ratio:.1f}x ({imbalance.largest!r} "
            f"against {imbalance.smallest!r}): add images of the small classes or "
            "train with class weights"
        )
    return found


def _label_warnings(report: HealthReport, images: Sequence[HealthImage]) -> list[str]:
    found = []
    if report.unlabelled_count:
        found.append(
            f"{_n(report.unlabelled_count, 'image')} without a label; label them or "
            "leave them out of the dataset version"
        )
    unknown = Counter(
        label
        for image in images
        for label in set(image.labels)
        if label not in report.class_names
    )
    found += [
        f"label {label!r} on {_n(count, 'image')} is not a class"
        for label, count in sorted(unknown.items())
    ]
    kinds = Counter(conflict.kind for conflict in report.label_conflicts)
    if kinds[ConflictKind.MULTIPLE_LABELS]:
        found.append(
            f"{_n(kinds[ConflictKind.MULTIPLE_LABELS], 'image')} with more than one "
            "label in a single-label project; keep one label each"
        )
    if kinds[ConflictKind.SOURCES_DISAGREE]:
        found.append(
            f"{_n(kinds[ConflictKind.SOURCES_DISAGREE], 'image')} imported with "
            "different labels from different paths; check their labels"
        )
    if report.mislabelled_groups:
        found.append(
            f"{_n(len(report.mislabelled_groups), 'near-duplicate group')} with "
            "different labels among the members; check their labels"
        )
    return found


def _split_warnings(report: HealthReport) -> list[str]:
    totals = dict(zip(SPLIT_COLUMNS, report.class_split.split_totals, strict=True))
    found = []
    if totals[UNASSIGNED]:
        found.append(
            f"{_n(totals[UNASSIGNED], 'image')} without a split; run split to "
            "assign them"
        )
    if totals[UNASSIGNED] < report.image_count:
        found += [
            f"the {split.value} split has no images"
            for split in SPLITS
            if not totals[split.value]
        ]
    if report.leaking_groups:
        found.append(
            f"{_n(len(report.leaking_groups), 'near-duplicate group')} across "
            "splits: the test score will be optimistic; run split with reassign to "
            "keep each group in one split"
        )
    return found


def _hash_warnings(unhashed: int) -> list[str]:
    if not unhashed:
        return []
    return [
        f"{_n(unhashed, 'image')} without a valid perceptual hash, left out of "
        "the near-duplicate search; import them again to hash them"
    ]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

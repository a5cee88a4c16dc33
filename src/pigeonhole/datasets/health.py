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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from pigeonhole.datasets.grouping import near_duplicate_groups
from pigeonhole.domain import SPLITS, ProjectType, Split
from pigeonhole.errors import ValidationError

#: Column of the class x split table for images that have no split yet.
UNASSIGNED = "unassigned"
SPLIT_COLUMNS: tuple[str, ...] = (*(split.value for split in SPLITS), UNASSIGNED)
#: A class with fewer images than this gets a warning.
MIN_IMAGES_PER_CLASS = 10
#: Largest class over smallest non-empty class above this gets a warning.
IMBALANCE_WARNING_RATIO = 3.0
#: At most this many unlabelled image ids are listed; the count is always exact.
UNLABELLED_ID_LIMIT = 1000
#: Aspect-ratio (width / height) buckets: a label and the lower bound of the next one.
ASPECT_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 0.5", 0.5),
    ("0.5-0.8", 0.8),
    ("0.8-1.25", 1.25),
    ("1.25-2", 2.0),
    ("2 and over", float("inf")),
)
#: Entries listed per section by :func:`render_text` before "... and N more".
TEXT_LIST_LIMIT = 10

_HEX_HASH = re.compile(r"[0-9a-fA-F]{1,16}")


@dataclass(frozen=True)
class HealthImage:
    """One image as the health check sees it.

    Attributes:
        image_id: The image's id.
        filename: A name to show, usually the first source's file name.
        sources: Every path these exact bytes were imported from; more than one
            means exact duplicates.
        source_labels: The labels each source came with, in the order of ``sources``.
        labels: The current labels; empty for an unlabelled image.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``None`` when unassigned.
        width: Width in pixels.
        height: Height in pixels.
        phash: 64-bit perceptual hash as 16 hex digits.
    """

    image_id: int
    filename: str
    sources: tuple[str, ...]
    source_labels: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...]
    split: str | None
    width: int
    height: int
    phash: str


class ConflictKind(StrEnum):
    """Why an image's labels contradict each other."""

    MULTIPLE_LABELS = "multiple-labels"  # a single-label image with several labels
    SOURCES_DISAGREE = "sources-disagree"  # the same bytes imported with other labels


@dataclass(frozen=True)
class ClassSplitTable:
    """Label counts per class and split, and image counts per split.

    Attributes:
        class_names: The rows, in project order.
        counts: One row per class, one count per entry of ``columns``.
        split_totals: Images per column; an image with two labels counts once and
            unlabelled images count too, so this is not the sum of ``counts``.
        columns: The splits, then :data:`UNASSIGNED`.
    """

    class_names: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    split_totals: tuple[int, ...]
    columns: tuple[str, ...] = SPLIT_COLUMNS

    @property
    def class_totals(self) -> tuple[int, ...]:
        """Images per class over every split, in ``class_names`` order."""
        return tuple(sum(row) for row in self.counts)

    def count(self, class_name: str, split: str | None) -> int:
        """Images of ``class_name`` in ``split`` (``None`` for unassigned)."""
        row = _position(self.class_names, class_name, "class")
        column = _position(self.columns, split or UNASSIGNED, "split")
        return self.counts[row][column]

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form: rows keyed by class name, columns by split."""
        return {
            "columns": list(self.columns),
            "rows": {
                name: dict(zip(self.columns, row, strict=True))
                for name, row in zip(self.class_names, self.counts, strict=True)
            },
            "class_totals": dict(zip(self.class_names, self.class_totals, strict=True)),
            "split_totals": dict(zip(self.columns, self.split_totals, strict=True)),
        }


@dataclass(frozen=True)
class Imbalance:
    """How uneven the classes are.

    Attributes:
        ratio: Images in the largest class over images in the smallest non-empty
            one; ``None`` when no class has an image.
        largest: The largest class, or ``None``.
        largest_count: Images in the largest class.
        smallest: The smallest non-empty class, or ``None``.
        smallest_count: Images in the smallest non-empty class.
        empty_classes: Classes with no image at all.
    """

    ratio: float | None
    largest: str | None
    largest_count: int
    smallest: str | None
    smallest_count: int
    empty_classes: tuple[str, ...]


@dataclass(frozen=True)
class Spread:
    """Smallest, median and largest of a set of values."""

    minimum: float
    median: float
    maximum: float


@dataclass(frozen=True)
class SizeStats:
    """Image sizes and shapes.

    Attributes:
        width: Widths in pixels.
        height: Heights in pixels.
        megapixels: Width times height, in millions of pixels.
        aspect_buckets: ``(label, images)`` per entry of :data:`ASPECT_BUCKETS`.
        median_aspect_ratio: Median width / height; above 1 is landscape.
        sizes: ``(width, height)`` of every image in input order, kept so that the
            size scatter plot can be drawn from the report alone.
    """

    width: Spread
    height: Spread
    megapixels: Spread
    aspect_buckets: tuple[tuple[str, int], ...]
    median_aspect_ratio: float
    sizes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ExactDuplicate:
    """One stored image whose bytes were imported from more than one path."""

    image_id: int
    filename: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class GroupMember:
    """One image of a near-duplicate group."""

    image_id: int
    filename: str
    split: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True)
class NearDuplicateGroup:
    """Two or more images whose perceptual hashes are chained within the distance."""

    members: tuple[GroupMember, ...]

    @property
    def splits(self) -> tuple[str, ...]:
        """The distinct splits of the members, unassigned left out, in split order."""
        present = {member.split for member in self.members}
        return tuple(column for column in SPLIT_COLUMNS if column in present)

    @property
    def straddles_splits(self) -> bool:
        """Whether members sit in two or more splits: leakage between them."""
        return len(self.splits) > 1

    @property
    def labels_differ(self) -> bool:
        """Whether labelled members disagree; unlabelled members contradict nothing."""
        return len(_label_sets(member.labels for member in self.members)) > 1

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return {
            "members": _plain(self.members),
            "splits": list(self.splits),
            "straddles_splits": self.straddles_splits,
            "labels_differ": self.labels_differ,
        }


@dataclass(frozen=True)
class LabelConflict:
    """One image whose labels contradict each other."""

    image_id: int
    filename: str
    kind: ConflictKind
    labels: tuple[str, ...]
    sources: tuple[str, ...]
    source_labels: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Cooccurrence:
    """How labels appear together in a multi-label project.

    Attributes:
        class_names: Rows and columns of ``counts``.
        counts: Images that have both classes; the diagonal holds images per class.
        cardinality: Entry ``k`` is the number of images with exactly ``k`` labels.
    """

    class_names: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    cardinality: tuple[int, ...]


@dataclass(frozen=True)
class HealthReport:
    """Everything :func:`compute_health` found.

    Attributes:
        project_type: Single- or multi-label.
        class_names: The project's classes, in order.
        near_duplicate_distance: The Hamming distance the search used, in bits.
        image_count: Images checked.
        class_split: Counts per class and split.
        imbalance: Largest over smallest class, and the empty classes.
        sizes: Size and aspect-ratio statistics; ``None`` without images.
        unlabelled_count: Images without a label.
        unlabelled_ids: The first :data:`UNLABELLED_ID_LIMIT` of their ids.
        exact_duplicates: Images whose bytes came from more than one path.
        near_duplicates: Groups of images within the distance of each other.
        label_conflicts: One entry per image and kind of contradiction.
        cooccurrence: Label pairs and labels per image; multi-label projects only.
        warnings: One sentence per problem worth fixing, with what to do.
    """

    project_type: ProjectType
    class_names: tuple[str, ...]
    near_duplicate_distance: int
    image_count: int
    class_split: ClassSplitTable
    imbalance: Imbalance
    sizes: SizeStats | None
    unlabelled_count: int
    unlabelled_ids: tuple[int, ...]
    exact_duplicates: tuple[ExactDuplicate, ...]
    near_duplicates: tuple[NearDuplicateGroup, ...]
    label_conflicts: tuple[LabelConflict, ...]
    cooccurrence: Cooccurrence | None
    warnings: tuple[str, ...] = ()

    @property
    def leaking_groups(self) -> tuple[NearDuplicateGroup, ...]:
        """Near-duplicate groups that straddle splits."""
        return tuple(group for group in self.near_duplicates if group.straddles_splits)

    @property
    def mislabelled_groups(self) -> tuple[NearDuplicateGroup, ...]:
        """Near-duplicate groups whose labelled members have different labels."""
        return tuple(group for group in self.near_duplicates if group.labels_differ)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form: every field, tuples as lists, plus the two group lists."""
        return {
            **_fields_of(self),
            "leaking_groups": _plain(self.leaking_groups),
            "mislabelled_groups": _plain(self.mislabelled_groups),
        }


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
        if len(_label_sets(image.source_labels)) > 1:
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


def _label_sets(label_lists: Iterable[Sequence[str]]) -> set[frozenset[str]]:
    # A source or image without labels (a loose folder, an unlabelled copy) says
    # nothing about the class, so it contradicts nothing.
    return {frozenset(labels) for labels in label_lists if labels}


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


def _plain(value: object) -> object:
    if isinstance(value, ClassSplitTable | NearDuplicateGroup):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return _fields_of(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value.value if isinstance(value, StrEnum) else value


def _fields_of(value: Any) -> dict[str, object]:
    return {field.name: _plain(getattr(value, field.name)) for field in fields(value)}


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _position(values: tuple[str, ...], value: str, what: str) -> int:
    if value not in values:
        raise ValidationError(f"{what} {value!r} is not one of: {', '.join(values)}")
    return values.index(value)

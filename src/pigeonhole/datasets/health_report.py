"""The shape of a health report: plain frozen dataclasses, JSON-ready.

:mod:`pigeonhole.datasets.health` fills them in; the CLI, the server and the plots read
them. Kept apart so that a reader of the report (the web UI, a notebook) need not load
the checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from enum import StrEnum
from typing import Any

from pigeonhole.domain import SPLITS, ProjectType
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
        return len(label_sets(member.labels for member in self.members)) > 1

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


def _position(values: tuple[str, ...], value: str, what: str) -> int:
    if value not in values:
        raise ValidationError(f"{what} {value!r} is not one of: {', '.join(values)}")
    return values.index(value)


def label_sets(label_lists: Iterable[Sequence[str]]) -> set[frozenset[str]]:
    """The distinct non-empty label sets among ``label_lists``.

    A source or image without labels (a loose folder, an unlabelled copy) says nothing
    about the class, so it contradicts nothing and is left out.
    """
    return {frozenset(labels) for labels in label_lists if labels}

"""Reads a project's images as plain records for the pure dataset modules.

:mod:`~pigeonhole.datasets.health` and :mod:`~pigeonhole.datasets.splitting` work on
records and know nothing of the database; this module builds those records with a few
column queries (no ORM objects per image, so ten thousand images stay cheap) and
writes split assignments back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pigeonhole.datasets.grouping import group_ids, near_duplicate_pairs
from pigeonhole.datasets.splitting import (
    SplitItem,
    SplitRatios,
    assign_splits,
)
from pigeonhole.domain import SPLITS, Split
from pigeonhole.storage.database import (
    ClassRow,
    ImageLabelRow,
    ImageRow,
    ImageSourceRow,
)

if TYPE_CHECKING:
    from pigeonhole.datasets.health import HealthReport
    from pigeonhole.project import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageFacts:
    """The columns of one image that health and splitting need."""

    id: int
    sha256: str
    filename: str
    width: int
    height: int
    phash: str
    split: str | None
    labels: tuple[int, ...]  # class positions (class ids), in order


@dataclass
class SplitSummary:
    """What :func:`split_project` did.

    Attributes:
        ratios: Target shares of train, valid and test.
        seed: The seed used.
        assigned: Images that had no split and got one.
        moved: Images that changed split (only with ``reassign``).
        counts: Images per split.
        class_counts: Per class name, images per split.
        groups: Near-duplicate groups of two or more, each kept in one split.
    """

    ratios: tuple[float, float, float]
    seed: int
    assigned: int = 0
    moved: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return asdict(self)


def load_facts(session: Session, project_id: int) -> list[ImageFacts]:
    """Every image of the project with its labels, in id order."""
    positions = dict(
        session.execute(
            select(ClassRow.id, ClassRow.position).where(
                ClassRow.project_id == project_id
            )
        ).all()
    )
    labels: dict[int, list[int]] = defaultdict(list)
    rows = session.execute(
        select(ImageLabelRow.image_id, ImageLabelRow.class_id)
        .join(ImageRow, ImageRow.id == ImageLabelRow.image_id)
        .where(ImageRow.project_id == project_id)
    )
    for image_id, class_id in rows:
        labels[image_id].append(positions[class_id])
    columns = (
        ImageRow.id,
        ImageRow.sha256,
        ImageRow.filename,
        ImageRow.width,
        ImageRow.height,
        ImageRow.phash,
        ImageRow.split,
    )
    images = session.execute(
        select(*columns).where(ImageRow.project_id == project_id).order_by(ImageRow.id)
    )
    return [
        ImageFacts(*row, labels=tuple(sorted(labels.get(row[0], [])))) for row in images
    ]


def near_duplicate_group_ids(facts: list[ImageFacts], max_distance: int) -> list[int]:
    """For each image, the id of its near-duplicate group (itself when alone)."""
    pairs = near_duplicate_pairs([fact.phash for fact in facts], max_distance)
    return group_ids(len(facts), pairs)


def split_project(
    project: Project, ratios: SplitRatios | None, *, seed: int, reassign: bool
) -> SplitSummary:
    """Assigns splits to a project's images and stores them; see Project.split."""
    ratios = ratios or SplitRatios()
    distance = project.workspace.settings.near_duplicate_distance
    with project.workspace.sessions.begin() as session:
        facts = load_facts(session, project.id)
        groups = near_duplicate_group_ids(facts, distance)
        items = [
            SplitItem(
                key=fact.id,
                labels=fact.labels,
                group=facts[group].id,
                current=Split(fact.split) if fact.split else None,
            )
            for fact, group in zip(facts, groups, strict=True)
        ]
        assignment = assign_splits(items, ratios, seed=seed, reassign=reassign)
        summary = SplitSummary(ratios=ratios.as_tuple(), seed=seed)
        summary.groups = _count_groups(groups)
        _write_splits(session, facts, assignment, summary)
        _count(summary, facts, assignment, project.class_names)
    logger.info(
        "split %s: %d assigned, %d moved", project.slug, summary.assigned, summary.moved
    )
    return summary


def _count_groups(groups: list[int]) -> int:
    sizes: dict[int, int] = defaultdict(int)
    for group in groups:
        sizes[group] += 1
    return sum(1 for size in sizes.values() if size > 1)


def _write_splits(
    session: Session,
    facts: list[ImageFacts],
    assignment: dict[int, Split],
    summary: SplitSummary,
) -> None:
    changes: dict[str, list[int]] = defaultdict(list)
    for fact in facts:
        new = assignment[fact.id].value
        if fact.split == new:
            continue
        if fact.split is None:
            summary.assigned += 1
        else:
            summary.moved += 1
        changes[new].append(fact.id)
    for split, ids in changes.items():
        for start in range(0, len(ids), 500):
            session.execute(
                update(ImageRow)
                .where(ImageRow.id.in_(ids[start : start + 500]))
                .values(split=split)
            )


def _count(
    summary: SplitSummary,
    facts: list[ImageFacts],
    assignment: dict[int, Split],
    class_names: list[str],
) -> None:
    summary.counts = {split.value: 0 for split in SPLITS}
    summary.class_counts = {
        name: {split.value: 0 for split in SPLITS} for name in class_names
    }
    for fact in facts:
        split = assignment[fact.id].value
        summary.counts[split] += 1
        for position in fact.labels:
            summary.class_counts[class_names[position]][split] += 1


def load_sources(
    session: Session, project_id: int
) -> dict[int, list[tuple[str, list[str]]]]:
    """Every source path of every image, with the labels it came with."""
    rows = session.execute(
        select(ImageSourceRow.image_id, ImageSourceRow.path, ImageSourceRow.labels)
        .join(ImageRow, ImageRow.id == ImageSourceRow.image_id)
        .where(ImageRow.project_id == project_id)
        .order_by(ImageSourceRow.id)
    )
    sources: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    for image_id, path, labels in rows:
        sources[image_id].append((path, list(labels or [])))
    return sources


def health_of(project: Project, near_duplicate_distance: int | None) -> HealthReport:
    """The health report of a project; see Project.health."""
    from pigeonhole.datasets.health import HealthImage, compute_health

    distance = near_duplicate_distance
    if distance is None:
        distance = project.workspace.settings.near_duplicate_distance
    class_names = project.class_names
    with project.workspace.sessions() as session:
        facts = load_facts(session, project.id)
        sources = load_sources(session, project.id)
    records = []
    for fact in facts:
        found = sources.get(fact.id) or [(fact.filename, [])]
        records.append(
            HealthImage(
                image_id=fact.id,
                filename=fact.filename,
                sources=tuple(path for path, _ in found),
                source_labels=tuple(tuple(labels) for _, labels in found),
                labels=tuple(class_names[position] for position in fact.labels),
                split=fact.split,
                width=fact.width,
                height=fact.height,
                phash=fact.phash,
            )
        )
    return compute_health(
        records, class_names, project.type, near_duplicate_distance=distance
    )

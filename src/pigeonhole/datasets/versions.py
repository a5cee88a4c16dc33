"""Dataset versions: frozen, numbered snapshots of images, labels, splits and recipe.

Generating a version decodes every labelled image once, applies the preprocessing,
writes ``multiplier`` copies of each training image (copy 0 as it is, the others
augmented with a generator seeded by the version seed, the image's sha256 and the copy
index, so the result does not depend on processing order), and stores every output
in the blob store. The manifest lists every output with its source image, labels and
split, plus the recipe and counts; the sha256 of its canonical JSON is the version's
``manifest_hash``, so two versions made from the same inputs and seed share it.
Blobs are written before the database row, so a killed generation leaves no version.

Example:
    >>> recipe = Preprocessing(resize=(224, 224))  # doctest: +SKIP
    >>> version = project.create_version(recipe)  # doctest: +SKIP
    >>> version.export("out/", format="folders")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from PIL import Image
from sqlalchemy import func, select

from pigeonhole import __version__, images
from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.datasets.project_data import ImageFacts, load_facts, split_project
from pigeonhole.domain import SPLITS, Split
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.progress import Progress, report
from pigeonhole.storage.database import VersionRow

if TYPE_CHECKING:
    from pigeonhole.project import Project

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
JPEG_QUALITY = 95
EXPORT_FORMATS = ("folders", "multilabel-csv")


@dataclass(frozen=True)
class VersionItem:
    """One image file of a version.

    Attributes:
        name: File name in exports, unique within the version.
        sha256: Digest of the stored output file.
        source: Digest of the project image it was made from.
        labels: Class names.
        split: Its split.
        copy: 0 for the preprocessed image, 1 and up for augmented copies.
    """

    name: str
    sha256: str
    source: str
    labels: tuple[str, ...]
    split: Split
    copy: int


@dataclass(frozen=True)
class DatasetVersion:
    """A frozen dataset version of a project."""

    project: Project
    number: int
    manifest_hash: str
    recipe: dict[str, Any]
    counts: dict[str, Any]
    created_at: datetime

    def __repr__(self) -> str:
        return f"DatasetVersion({self.project.slug!r}, {self.number})"

    @property
    def id(self) -> str:
        """``<project-slug>/<number>``."""
        return f"{self.project.slug}/{self.number}"

    def manifest(self) -> dict[str, Any]:
        """The manifest: recipe, class names, counts and every item."""
        data = self.project.workspace.blobs.get(self.manifest_hash)
        manifest: dict[str, Any] = json.loads(data)
        return manifest

    @property
    def class_names(self) -> list[str]:
        """Class names in class-id order, as frozen in the version."""
        return list(self.recipe["class_names"])

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing the images went through."""
        return Preprocessing.from_dict(self.recipe["preprocessing"])

    @property
    def augmentation(self) -> Augmentation:
        """The augmentation recipe of the training split."""
        return Augmentation.from_dict(self.recipe["augmentation"])

    def items(self, split: str | Split | None = None) -> list[VersionItem]:
        """Every file of the version, or those of one split."""
        wanted = Split.parse(split) if split is not None else None
        found = [_item(entry) for entry in self.manifest()["items"]]
        return [item for item in found if wanted is None or item.split is wanted]

    def load(self, item: VersionItem) -> Image.Image:
        """The pixels of one item, RGB."""
        data = self.project.workspace.blobs.get(item.sha256)
        return images.decode(data, name=item.name)

    def export(self, folder: str | Path, *, format: str = "folders") -> Path:
        """Writes the version's files in a layout other tools read.

        Args:
            folder: Destination; created, must be empty if it exists.
            format: ``folders`` (``<split>/<class>/<file>``, single-label) or
                ``multilabel-csv`` (``<split>/<file>`` beside a Roboflow-style
                ``_classes.csv``).

        Returns:
            The folder, which also gets ``manifest.json``.
        """
        from pigeonhole.datasets.export import export_version

        return export_version(self, Path(folder), format)


def generate_version(
    project: Project,
    preprocessing: Preprocessing | None,
    augmentation: Augmentation | None,
    *,
    seed: int,
    progress: Progress | None = None,
) -> DatasetVersion:
    """Generates the next version of ``project``; see Project.create_version."""
    preprocessing = preprocessing or Preprocessing()
    augmentation = augmentation or Augmentation()
    facts = _labelled_facts_with_splits(project)
    class_names = project.class_names
    entries = _render(
        project, facts, class_names, preprocessing, augmentation, seed, progress
    )
    recipe = {
        "class_names": class_names,
        "project_type": project.type.value,
        "preprocessing": preprocessing.to_dict(),
        "augmentation": augmentation.to_dict(),
        "seed": seed,
    }
    counts = _counts(entries, class_names)
    manifest = {
        "format": MANIFEST_FORMAT,
        "recipe": recipe,
        "counts": counts,
        "items": entries,
    }
    encoded = canonical_json(manifest)
    manifest_hash = project.workspace.blobs.put(encoded)
    with project.workspace.sessions.begin() as session:
        number = 1 + (
            session.scalar(
                select(func.max(VersionRow.number)).where(
                    VersionRow.project_id == project.id
                )
            )
            or 0
        )
        row = VersionRow(
            project_id=project.id,
            number=number,
            manifest_hash=manifest_hash,
            recipe=recipe | {"pigeonhole_version": __version__},
            counts=counts,
        )
        session.add(row)
        session.flush()
        version = _from_row(project, row)
    logger.info("generated version %s (%s)", version.id, manifest_hash[:12])
    return version


def list_versions(project: Project) -> list[DatasetVersion]:
    """Every version of ``project``, oldest first."""
    with project.workspace.sessions() as session:
        rows = session.scalars(
            select(VersionRow)
            .where(VersionRow.project_id == project.id)
            .order_by(VersionRow.number)
        )
        return [_from_row(project, row) for row in rows]


def get_version(project: Project, number: int | None) -> DatasetVersion:
    """Version ``number`` of ``project``, or its newest."""
    versions = list_versions(project)
    if not versions:
        raise NotFoundError(
            f"project {project.slug!r} has no dataset version yet; create one with "
            f"`pigeonhole version create {project.slug}`"
        )
    if number is None:
        return versions[-1]
    for version in versions:
        if version.number == number:
            return version
    known = ", ".join(str(version.number) for version in versions)
    raise NotFoundError(
        f"project {project.slug!r} has no version {number}; has {known}"
    )


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal values give equal bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _labelled_facts_with_splits(project: Project) -> list[ImageFacts]:
    with project.workspace.sessions() as session:
        facts = [fact for fact in load_facts(session, project.id) if fact.labels]
    if not facts:
        raise ValidationError(
            f"project {project.slug!r} has no labelled images; import or label some "
            "before creating a version"
        )
    if any(fact.split is None for fact in facts):
        logger.warning(
            "%s: some labelled images have no split; assigning 70/20/10 (seed 0) to "
            "them before freezing the version",
            project.slug,
        )
        split_project(project, None, seed=0, reassign=False)
        with project.workspace.sessions() as session:
            facts = [fact for fact in load_facts(session, project.id) if fact.labels]
    return sorted(facts, key=lambda fact: fact.sha256)


def _render(
    project: Project,
    facts: list[ImageFacts],
    class_names: list[str],
    preprocessing: Preprocessing,
    augmentation: Augmentation,
    seed: int,
    progress: Progress | None,
) -> list[dict[str, Any]]:
    blobs = project.workspace.blobs
    names = _export_names(facts)

    def render(fact: ImageFacts) -> list[dict[str, Any]]:
        source = images.decode(
            blobs.get(fact.sha256),
            name=fact.filename,
            orient=preprocessing.auto_orient,
        )
        prepared = preprocessing.apply(source)
        copies = (
            augmentation.outputs(prepared, seed, fact.sha256)
            if fact.split == Split.TRAIN.value
            else [prepared]
        )
        labels = [class_names[position] for position in fact.labels]
        stem, entries = names[fact.id], []
        for copy, picture in enumerate(copies):
            digest = blobs.put(_encode(picture))
            suffix = f"_aug{copy}" if copy else ""
            entries.append(
                {
                    "name": f"{stem}{suffix}.jpg",
                    "sha256": digest,
                    "source": fact.sha256,
                    "labels": labels,
                    "split": fact.split,
                    "copy": copy,
                }
            )
        return entries

    entries: list[dict[str, Any]] = []
    workers = project.workspace.settings.worker_count()
    report(progress, "version", 0, len(facts))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, rendered in enumerate(pool.map(render, facts), start=1):
            entries.extend(rendered)
            report(progress, "version", done, len(facts))
    return entries


def _export_names(facts: list[ImageFacts]) -> dict[int, str]:
    """A readable, unique file stem per image: its name plus a short digest."""
    stems = {}
    for fact in facts:
        stem = PurePosixPath(fact.filename).stem.replace(" ", "_")[:80] or "image"
        stems[fact.id] = f"{stem}_{fact.sha256[:10]}"
    return stems


def _encode(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _counts(entries: list[dict[str, Any]], class_names: list[str]) -> dict[str, Any]:
    per_split = {split.value: 0 for split in SPLITS}
    per_class = {name: {split.value: 0 for split in SPLITS} for name in class_names}
    sources = {split.value: set() for split in SPLITS}  # type: dict[str, set[str]]
    for entry in entries:
        per_split[entry["split"]] += 1
        sources[entry["split"]].add(entry["source"])
        for label in entry["labels"]:
            per_class[label][entry["split"]] += 1
    return {
        "files": per_split,
        "images": {split: len(found) for split, found in sources.items()},
        "classes": per_class,
    }


def _item(entry: dict[str, Any]) -> VersionItem:
    return VersionItem(
        name=entry["name"],
        sha256=entry["sha256"],
        source=entry["source"],
        labels=tuple(entry["labels"]),
        split=Split(entry["split"]),
        copy=int(entry["copy"]),
    )


def _from_row(project: Project, row: VersionRow) -> DatasetVersion:
    return DatasetVersion(
        project=project,
        number=row.number,
        manifest_hash=row.manifest_hash,
        recipe=dict(row.recipe),
        counts=dict(row.counts),
        created_at=row.created_at,
    )


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The sha256 of a manifest's canonical JSON."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()

"""A project: its classes, images and labels, and the dataset work done on them.

Example:
    >>> project = workspace.project("bananas")  # doctest: +SKIP
    >>> report = project.import_path("photos/")  # doctest: +SKIP
    >>> project.split(SplitRatios(0.7, 0.2, 0.1), seed=0)  # doctest: +SKIP
    >>> recipe = Preprocessing(resize=(224, 224))  # doctest: +SKIP
    >>> version = project.create_version(recipe)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from pigeonhole import images as image_io
from pigeonhole.datasets.suggestions import clear_suggestions
from pigeonhole.domain import ProjectType, Split
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.progress import Progress
from pigeonhole.storage.database import (
    ClassRow,
    ImageLabelRow,
    ImageRow,
    ImportRow,
    ProjectRow,
    SuggestionRow,
    utcnow,
)
from pigeonhole.workspace import check_class_name

if TYPE_CHECKING:
    from pigeonhole.datasets.augmentation import Augmentation
    from pigeonhole.datasets.health import HealthReport
    from pigeonhole.datasets.importers import SourceRecord
    from pigeonhole.datasets.ingest import ImportReport
    from pigeonhole.datasets.project_data import SplitSummary
    from pigeonhole.datasets.splitting import SplitRatios
    from pigeonhole.datasets.versions import DatasetVersion
    from pigeonhole.preprocessing import Preprocessing
    from pigeonhole.training.registry import TrainedModel
    from pigeonhole.training.runs import TrainConfig
    from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRecord:
    """An image of a project as the API hands it out."""

    id: int
    sha256: str
    filename: str
    width: int
    height: int
    split: Split | None
    labels: tuple[str, ...]


class Project:
    """A handle on one project of a workspace; cheap to create, reads on demand."""

    def __init__(self, workspace: Workspace, project_id: int) -> None:
        self.workspace = workspace
        self.id = project_id
        with workspace.sessions() as session:
            row = session.get(ProjectRow, project_id)
            if row is None:
                raise NotFoundError(f"no project with id {project_id}")
            self.name: str = row.name
            self.slug: str = row.slug
            self.type = ProjectType(row.type)

    def __repr__(self) -> str:
        return f"Project({self.slug!r}, {self.type.value})"

    # Classes

    @property
    def class_names(self) -> list[str]:
        """Class names in class-id order."""
        with self.workspace.sessions() as session:
            return list(
                session.scalars(
                    select(ClassRow.name)
                    .where(ClassRow.project_id == self.id)
                    .order_by(ClassRow.position)
                )
            )

    def add_classes(self, names: Iterable[str]) -> list[str]:
        """Appends the classes not there yet; returns those added, in order."""
        with self.workspace.sessions.begin() as session:
            return self._add_classes(session, names)

    def _add_classes(self, session: Session, names: Iterable[str]) -> list[str]:
        rows = session.scalars(select(ClassRow).where(ClassRow.project_id == self.id))
        existing = {row.name: row.position for row in rows}
        added: list[str] = []
        for name in names:
            name = check_class_name(name)
            if name in existing:
                continue
            existing[name] = len(existing)
            session.add(
                ClassRow(project_id=self.id, name=name, position=existing[name])
            )
            added.append(name)
        session.flush()
        return added

    def _class_ids(self, session: Session) -> dict[str, int]:
        rows = session.execute(
            select(ClassRow.name, ClassRow.id).where(ClassRow.project_id == self.id)
        )
        return {name: class_id for name, class_id in rows}

    # Import

    def import_path(
        self,
        path: str | Path,
        *,
        resplit: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Imports a folder, CSV, Roboflow export, image or ``.zip`` of any of them.

        Args:
            path: What to import; the layout is detected.
            resplit: Ignore the splits the source carries (assign them later with
                :meth:`split`); by default they are kept.
            progress: Called with ``("import", done, total)``.

        Returns:
            What was added, what was already there, duplicates and refused files.
        """
        path = Path(path)
        if path.is_file() and path.suffix.lower() == ".zip":
            from pigeonhole.datasets.archives import extract_zip

            unpacked = Path(tempfile.mkdtemp(dir=self.workspace.scratch))
            try:
                folder = extract_zip(path, unpacked)
                return self._import(folder, str(path), resplit, progress)
            finally:
                shutil.rmtree(unpacked, ignore_errors=True)
        return self._import(path, str(path), resplit, progress)

    def _import(
        self, folder: Path, label: str, resplit: bool, progress: Progress | None
    ) -> ImportReport:
        from pigeonhole.datasets.importers import detect
        from pigeonhole.datasets.ingest import ImportReport, Problem, _Target, ingest

        source = detect(folder)
        result = ImportReport(source=label, layout=source.layout.value)
        result.found = len(source.records)
        result.errors.extend(Problem(p.name, p.reason) for p in source.problems)
        records = self._checked_records(source.records, result)
        with self.workspace.sessions.begin() as session:
            result.classes_added = self._add_classes(session, source.class_names)
            class_ids = self._class_ids(session)
            row = ImportRow(project_id=self.id, source=label)
            session.add(row)
            session.flush()
            import_id = row.id
        target = _Target(
            project_id=self.id,
            class_ids=class_ids,
            import_id=import_id,
            keep_split=not resplit,
            blobs=self.workspace.blobs,
            sessions=self.workspace.sessions,
        )
        workers = self.workspace.settings.worker_count()
        try:
            ingest(records, target, result, workers=workers, progress=progress)
        except BaseException as error:
            # Images committed so far stay (each chunk is its own transaction);
            # running the import again adds the rest.
            self._finish_import(
                import_id, "interrupted", result, str(error) or type(error).__name__
            )
            raise
        result.import_id = import_id
        self._finish_import(import_id, "done", result)
        logger.info("imported %s into %s: %s", label, self.slug, result.summary())
        return result

    def _finish_import(
        self, import_id: int, status: str, result: ImportReport, reason: str = ""
    ) -> None:
        report = result.to_dict()
        if reason:
            report["interrupted_by"] = reason
        with self.workspace.sessions.begin() as session:
            row = session.get(ImportRow, import_id)
            if row is not None:
                row.status = status
                row.finished_at = utcnow()
                row.report = report

    def _checked_records(
        self, records: Sequence[SourceRecord], result: ImportReport
    ) -> list[SourceRecord]:
        from pigeonhole.datasets.ingest import Problem

        if self.type.is_multi_label:
            return list(records)
        good = []
        for record in records:
            if len(record.labels) > 1:
                labels = ", ".join(record.labels)
                result.errors.append(
                    Problem(
                        record.name,
                        f"has {len(record.labels)} labels ({labels}) but project "
                        f"{self.slug!r} is single-label",
                    )
                )
            else:
                good.append(record)
        return good

    def add_image(
        self,
        image: bytes | str | Path,
        *,
        labels: Iterable[str] = (),
        split: str | Split | None = None,
        filename: str | None = None,
    ) -> ImageRecord:
        """Adds one image, labelled or not; an existing identical image is returned.

        Args:
            image: The file's bytes or its path.
            labels: Class names; unknown ones are added to the project.
            split: Its split, or None to assign one later.
            filename: Name to record; the path's name by default.

        Raises:
            ImageError: The bytes are not a usable image.
            ValidationError: Several labels in a single-label project.
        """
        if isinstance(image, bytes):
            data, name = image, filename or "upload"
        else:
            data, name = Path(image).read_bytes(), filename or Path(image).name
        info = image_io.inspect(data, name=name)
        wanted = self._checked_labels(labels)
        chosen = Split.parse(split).value if split is not None else None
        with self.workspace.sessions.begin() as session:
            self._add_classes(session, wanted)
            class_ids = self._class_ids(session)
            row = session.scalars(
                select(ImageRow).where(
                    ImageRow.project_id == self.id, ImageRow.sha256 == info.sha256
                )
            ).first()
            if row is None:
                self.workspace.blobs.put(data, info.sha256)
                row = ImageRow(
                    project_id=self.id,
                    sha256=info.sha256,
                    filename=name,
                    width=info.width,
                    height=info.height,
                    format=info.format,
                    mode=info.mode,
                    size_bytes=len(data),
                    phash=info.phash,
                    split=chosen,
                )
                row.labels = [
                    ImageLabelRow(class_id=class_ids[label], source="user")
                    for label in wanted
                ]
                session.add(row)
                session.flush()
            return self._record(session, row)

    # Images and labels

    def images(
        self,
        *,
        split: str | Split | None = None,
        label: str | None = None,
        unlabelled: bool = False,
        suggested: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ImageRecord]:
        """Images in id order, optionally filtered by split, class, no label, or
        carrying a model's suggested label (see `pigeonhole.datasets.suggestions`)."""
        query = self._image_query(
            split=split, label=label, unlabelled=unlabelled, suggested=suggested
        )
        query = query.order_by(ImageRow.id).offset(offset).limit(limit)
        with self.workspace.sessions() as session:
            names = self._class_names_by_id(session)
            return [_to_record(row, names) for row in session.scalars(query)]

    def count_images(
        self,
        *,
        split: str | Split | None = None,
        label: str | None = None,
        unlabelled: bool = False,
        suggested: bool = False,
    ) -> int:
        """How many images :meth:`images` would list with no limit."""
        query = self._image_query(
            split=split, label=label, unlabelled=unlabelled, suggested=suggested
        )
        with self.workspace.sessions() as session:
            count = session.scalar(select(func.count()).select_from(query.subquery()))
        return int(count or 0)

    def image(self, image_id: int) -> ImageRecord:
        """One image by id."""
        with self.workspace.sessions() as session:
            return self._record(session, self._image_row(session, image_id))

    def load_image(self, image_id: int) -> Image.Image:
        """The image's pixels: upright, 8-bit RGB, through the safe decode path."""
        record = self.image(image_id)
        data = self.workspace.blobs.get(record.sha256)
        return image_io.decode(data, name=record.filename)

    def set_labels(self, image_ids: Iterable[int], labels: Iterable[str]) -> int:
        """Replaces the labels of every listed image; returns how many changed.

        Unknown class names are added to the project. An empty ``labels`` makes the
        images unlabelled; any other clears their suggested labels.
        """
        wanted = self._checked_labels(labels)
        ids = list(image_ids)
        with self.workspace.sessions.begin() as session:
            self._add_classes(session, wanted)
            class_ids = self._class_ids(session)
            rows = self._image_rows(session, ids)
            for row in rows:
                row.labels = [
                    ImageLabelRow(class_id=class_ids[name], source="user")
                    for name in wanted
                ]
            if wanted:
                clear_suggestions(session, ids)
            return len(rows)

    def add_label(self, image_ids: Iterable[int], label: str) -> int:
        """Adds one label to each image (multi-label projects); clears their
        suggested labels."""
        if not self.type.is_multi_label:
            raise ValidationError(
                f"project {self.slug!r} is single-label: use set_labels to replace "
                "the class instead of adding one"
            )
        with self.workspace.sessions.begin() as session:
            self._add_classes(session, [label])
            class_id = self._class_ids(session)[check_class_name(label)]
            changed = 0
            rows = self._image_rows(session, list(image_ids))
            for row in rows:
                if all(item.class_id != class_id for item in row.labels):
                    row.labels.append(ImageLabelRow(class_id=class_id, source="user"))
                    changed += 1
            clear_suggestions(session, [row.id for row in rows])
            return changed

    def remove_label(self, image_ids: Iterable[int], label: str) -> int:
        """Removes one label from each image that has it."""
        with self.workspace.sessions.begin() as session:
            class_id = self._class_ids(session).get(label)
            if class_id is None:
                raise NotFoundError(f"project {self.slug!r} has no class {label!r}")
            ids = [row.id for row in self._image_rows(session, list(image_ids))]
            result = session.execute(
                delete(ImageLabelRow).where(
                    ImageLabelRow.image_id.in_(ids), ImageLabelRow.class_id == class_id
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def set_split(self, image_ids: Iterable[int], split: str | Split | None) -> int:
        """Moves images to a split by hand (None removes their split)."""
        value = Split.parse(split).value if split is not None else None
        with self.workspace.sessions.begin() as session:
            rows = self._image_rows(session, list(image_ids))
            for row in rows:
                row.split = value
            return len(rows)

    # Dataset work, delegated to pigeonhole.datasets

    def health(self, *, near_duplicate_distance: int | None = None) -> HealthReport:
        """The health report: counts, sizes, duplicates, leakage, conflicts."""
        from pigeonhole.datasets.project_data import health_of

        return health_of(self, near_duplicate_distance)

    def split(
        self,
        ratios: SplitRatios | None = None,
        *,
        seed: int = 0,
        reassign: bool = False,
    ) -> SplitSummary:
        """Assigns train / valid / test, stratified and grouped by near-duplicates.

        Args:
            ratios: Target shares; 70 / 20 / 10 by default.
            seed: Same images and seed give the same split.
            reassign: Also move images that already have a split.
        """
        from pigeonhole.datasets.project_data import split_project

        return split_project(self, ratios, seed=seed, reassign=reassign)

    def create_version(
        self,
        preprocessing: Preprocessing | None = None,
        augmentation: Augmentation | None = None,
        *,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Freezes images, labels, splits and the recipe as the next version number."""
        from pigeonhole.datasets.versions import generate_version

        return generate_version(
            self, preprocessing, augmentation, seed=seed, progress=progress
        )

    def versions(self) -> list[DatasetVersion]:
        """Every dataset version, oldest first."""
        from pigeonhole.datasets.versions import list_versions

        return list_versions(self)

    def version(self, number: int | None = None) -> DatasetVersion:
        """Version ``number``, or the newest one."""
        from pigeonhole.datasets.versions import get_version

        return get_version(self, number)

    # Training, delegated to pigeonhole.training (imported late: it needs torch)

    def train(
        self,
        version: int | None = None,
        config: TrainConfig | None = None,
        *,
        progress: Progress | None = None,
    ) -> TrainedModel:
        """Trains a model on version ``version`` (the newest when None).

        Example:
            >>> model = project.train()  # doctest: +SKIP
            >>> model.model_id, model.metrics["accuracy"]  # doctest: +SKIP
            ('bananas/1', 0.95)
        """
        from pigeonhole.training.runs import train

        return train(self, version, config, progress)

    def models(self) -> list[TrainedModel]:
        """Every trained model of the project, by number."""
        from pigeonhole.training.registry import list_models

        return list_models(self)

    def model(self, number: int) -> TrainedModel:
        """Trained model ``number``."""
        from pigeonhole.training.registry import get_model

        return get_model(self, number)

    # Helpers

    def _checked_labels(self, labels: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(check_class_name(label) for label in labels))
        if len(wanted) > 1 and not self.type.is_multi_label:
            raise ValidationError(
                f"project {self.slug!r} is single-label; got {len(wanted)} labels "
                f"({', '.join(wanted)}), give one"
            )
        return wanted

    def _image_query(
        self,
        *,
        split: str | Split | None,
        label: str | None,
        unlabelled: bool,
        suggested: bool,
    ) -> Select[ImageRow]:
        query = select(ImageRow).where(ImageRow.project_id == self.id)
        if split is not None:
            query = query.where(ImageRow.split == Split.parse(split).value)
        if label is not None:
            query = (
                query.join(ImageLabelRow).join(ClassRow).where(ClassRow.name == label)
            )
        if unlabelled:
            query = query.where(~ImageRow.labels.any())
        if suggested:
            query = query.where(ImageRow.id.in_(select(SuggestionRow.image_id)))
        return query

    def _image_row(self, session: Session, image_id: int) -> ImageRow:
        row = session.get(ImageRow, image_id)
        if row is None or row.project_id != self.id:
            raise NotFoundError(f"project {self.slug!r} has no image {image_id}")
        return row

    def _image_rows(self, session: Session, ids: list[int]) -> list[ImageRow]:
        rows = list(
            session.scalars(
                select(ImageRow).where(
                    ImageRow.project_id == self.id, ImageRow.id.in_(ids)
                )
            )
        )
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            shown = ", ".join(map(str, missing[:10]))
            raise NotFoundError(f"project {self.slug!r} has no image(s) {shown}")
        return rows

    def _class_names_by_id(self, session: Session) -> dict[int, str]:
        return {class_id: name for name, class_id in self._class_ids(session).items()}

    def _record(self, session: Session, row: ImageRow) -> ImageRecord:
        return _to_record(row, self._class_names_by_id(session))


def _to_record(row: ImageRow, names: dict[int, str]) -> ImageRecord:
    return ImageRecord(
        id=row.id,
        sha256=row.sha256,
        filename=row.filename,
        width=row.width,
        height=row.height,
        split=Split(row.split) if row.split else None,
        labels=tuple(sorted((names[item.class_id] for item in row.labels), key=str)),
    )

"""The import engine: decode, hash, store and record the files an importer lists.

Files are examined in bounded chunks on a thread pool (Pillow and hashlib release the
GIL): each worker reads, decodes, hashes and stores the blob of one file, while the
main thread writes the previous chunk's rows. Each chunk is one database transaction,
written after its blobs, so a killed import leaves every committed image whole and
the next run picks up where it stopped: files already imported from the same path
are counted as unchanged. A blob whose rows were never committed is harmless: blobs
are content-addressed, and the next import finds it already stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from pigeonhole.datasets.importers import SourceRecord
from pigeonhole.errors import ImageError
from pigeonhole.images import ImageInfo, inspect
from pigeonhole.progress import Progress, report
from pigeonhole.storage.blobs import BlobStore
from pigeonhole.storage.database import ImageLabelRow, ImageRow, ImageSourceRow

logger = logging.getLogger(__name__)

CHUNK = 64


@dataclass(frozen=True)
class Problem:
    """A file that was not imported, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """A file whose bytes were already in the project under another name."""

    name: str
    duplicate_of: str


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        source: The path imported.
        layout: The layout detected.
        found: Files listed by the source.
        added: New images stored.
        unchanged: Files already imported from the same path (a repeated import).
        duplicates: Files whose bytes the project already held under another name;
            stored once, their path and labels recorded as another source.
        labelled: Images already present, unlabelled, that got labels from this import.
        errors: Files that could not be imported, with the reason.
        classes_added: Classes the import created.
    """

    source: str
    layout: str
    found: int = 0
    added: int = 0
    unchanged: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    labelled: int = 0
    errors: list[Problem] = field(default_factory=list)
    classes_added: list[str] = field(default_factory=list)
    import_id: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return asdict(self)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.found} files: {self.added} added, {self.unchanged} unchanged, "
            f"{len(self.duplicates)} exact duplicates, {len(self.errors)} refused"
        )


@dataclass(frozen=True)
class _Examined:
    record: SourceRecord
    info: ImageInfo | None = None
    size: int = 0
    error: str | None = None


@dataclass
class _Target:
    """Where the chunks go: the project, its classes and the stores."""

    project_id: int
    class_ids: dict[str, int]
    import_id: int
    keep_split: bool
    blobs: BlobStore
    sessions: sessionmaker[Session]


def ingest(
    records: Sequence[SourceRecord],
    target: _Target,
    result: ImportReport,
    *,
    workers: int,
    progress: Progress | None = None,
) -> ImportReport:
    """Imports ``records`` into the project described by ``target``."""
    total = len(records)
    done = 0
    report(progress, "import", 0, total)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for examined in _examine_chunks(pool, records, target.blobs):
            _store(examined, target, result)
            done += len(examined)
            report(progress, "import", done, total)
    return result


def _examine_chunks(
    pool: ThreadPoolExecutor, records: Sequence[SourceRecord], blobs: BlobStore
) -> Iterator[list[_Examined]]:
    """Examines chunk k+1 on the pool while the caller stores chunk k."""
    chunks = iter(_chunked(records, CHUNK))
    pending: list[Future[_Examined]] | None = None
    for chunk in chunks:
        submitted = [pool.submit(_examine, record, blobs) for record in chunk]
        if pending is not None:
            yield [future.result() for future in pending]
        pending = submitted
    if pending is not None:
        yield [future.result() for future in pending]


def _chunked(
    items: Sequence[SourceRecord], size: int
) -> Iterable[Sequence[SourceRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _examine(record: SourceRecord, blobs: BlobStore) -> _Examined:
    try:
        data = record.path.read_bytes()
    except OSError as error:
        return _Examined(record, error=f"cannot be read ({error.strerror})")
    try:
        info = inspect(data, name=record.name)
    except ImageError as error:
        reason = str(error).removeprefix(f"{record.name}: ")
        return _Examined(record, error=reason)
    # Writing the blob here keeps file I/O off the thread that writes the rows.
    blobs.put(data, info.sha256)
    return _Examined(record, info=info, size=len(data))


def _store(chunk: list[_Examined], target: _Target, result: ImportReport) -> None:
    good = [item for item in chunk if item.info is not None]
    for item in chunk:
        if item.error is not None:
            result.errors.append(Problem(item.record.name, item.error))
    if not good:
        return
    with target.sessions.begin() as session:
        known = _known_digests(session, target.project_id, good)
        fresh: dict[str, _Examined] = {}
        repeats: list[_Examined] = []
        for item in good:
            assert item.info is not None  # filtered above
            digest = item.info.sha256
            if digest in known or digest in fresh:
                repeats.append(item)
            else:
                fresh[digest] = item
        _insert_new(session, list(fresh.values()), target)
        result.added += len(fresh)
        if repeats:
            rows = _known_images(session, target.project_id, repeats)
            for item in repeats:
                assert item.info is not None
                _add_source(session, rows[item.info.sha256], item, target, result)


def _known_digests(
    session: Session, project_id: int, items: list[_Examined]
) -> set[str]:
    digests = {item.info.sha256 for item in items if item.info is not None}
    rows = session.scalars(
        select(ImageRow.sha256).where(
            ImageRow.project_id == project_id, ImageRow.sha256.in_(digests)
        )
    )
    return set(rows)


def _known_images(
    session: Session, project_id: int, items: list[_Examined]
) -> dict[str, ImageRow]:
    digests = {item.info.sha256 for item in items if item.info is not None}
    rows = session.scalars(
        select(ImageRow).where(
            ImageRow.project_id == project_id, ImageRow.sha256.in_(digests)
        )
    )
    return {row.sha256: row for row in rows}


def _insert_new(session: Session, items: list[_Examined], target: _Target) -> None:
    """Inserts new images with their labels and sources as three bulk statements.

    Building ORM objects one by one cost more than decoding on the worker threads
    (py-spy: most of the writing thread went to the unit of work), so new rows go
    in as bulk INSERTs; repeats of known images still go through the ORM.
    """
    if not items:
        return
    ids = session.scalars(
        insert(ImageRow).returning(ImageRow.id, sort_by_parameter_order=True),
        [_image_values(item, target) for item in items],
    ).all()
    labels = []
    sources = []
    for image_id, item in zip(ids, items, strict=True):
        record = item.record
        labels += [
            {"image_id": image_id, "class_id": target.class_ids[label]}
            for label in record.labels
        ]
        sources.append({"image_id": image_id, **_source_values(record, target)})
    if labels:
        session.execute(insert(ImageLabelRow), labels)
    session.execute(insert(ImageSourceRow), sources)


def _image_values(item: _Examined, target: _Target) -> dict[str, object]:
    info, record = item.info, item.record
    assert info is not None
    split = record.split.value if (record.split and target.keep_split) else None
    return {
        "project_id": target.project_id,
        "sha256": info.sha256,
        "filename": record.name,
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "mode": info.mode,
        "size_bytes": item.size,
        "phash": info.phash,
        "split": split,
        "import_id": target.import_id,
    }


def _add_source(
    session: Session,
    image: ImageRow,
    item: _Examined,
    target: _Target,
    result: ImportReport,
) -> None:
    record = item.record
    paths = {source.path for source in image.sources}
    if record.name in paths:
        result.unchanged += 1
        return
    image.sources.append(_source_row(record, target))
    result.duplicates.append(Duplicate(record.name, image.filename))
    if not image.labels and record.labels:
        image.labels = [
            ImageLabelRow(class_id=target.class_ids[label], source="import")
            for label in record.labels
        ]
        result.labelled += 1
    if image.split is None and record.split is not None and target.keep_split:
        image.split = record.split.value


def _source_row(record: SourceRecord, target: _Target) -> ImageSourceRow:
    return ImageSourceRow(**_source_values(record, target))


def _source_values(record: SourceRecord, target: _Target) -> dict[str, Any]:
    return {
        "path": record.name,
        "labels": list(record.labels),
        "split": record.split.value if record.split else None,
        "import_id": target.import_id,
    }

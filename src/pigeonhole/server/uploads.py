"""Uploads go through the same import as a folder on disk.

The files of a multipart upload are written into a scratch folder as the CSV layout
the importer reads (``images/<file>`` beside ``labels.csv`` holding each file's labels
and split), and :meth:`Project.import_path` imports that folder; a ``.zip`` is saved
as a scratch file and imported the same way. So uploads get the import's checks,
duplicate detection and report, file by file, and a bad file never stops the others.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pigeonhole.datasets.ingest import ImportReport, Problem
from pigeonhole.domain import Split
from pigeonhole.errors import ImageError, PigeonholeError, ValidationError
from pigeonhole.images import IMAGE_SUFFIXES
from pigeonhole.project import Project
from pigeonhole.server.errors import PayloadTooLargeError, size_text

LABEL_SEPARATOR = ";"
_UNSAFE_CHARACTERS = re.compile(r"[^\w.\- ]+")
_COPY_CHUNK = 1024 * 1024
_SHOWN_PROBLEMS = 5
_ACCEPTED_SUFFIXES = ", ".join(sorted(IMAGE_SUFFIXES))


@dataclass(frozen=True)
class Upload:
    """One uploaded file and what the request said about it.

    Attributes:
        name: A safe file name, unique within the upload.
        file: The bytes, readable from the start.
        labels: Class names; empty for an unlabelled image.
        split: Its split, or None to assign one later.
    """

    name: str
    file: BinaryIO
    labels: tuple[str, ...] = ()
    split: Split | None = None


def describe_uploads(
    files: Sequence[tuple[str | None, BinaryIO]],
    labels: Sequence[str] | None,
    splits: Sequence[str] | None,
) -> list[Upload]:
    """Pairs each file with its labels and split.

    ``labels`` and ``splits`` hold one entry per file, in file order, or a single
    entry for every file, or nothing. Labels in one entry are separated by ``;``.

    Raises:
        ValidationError: The counts do not line up, or a split is not a split name.
    """
    names = unique_names([safe_name(name) for name, _ in files])
    label_fields = _per_file(labels, len(files), "labels")
    split_fields = _per_file(splits, len(files), "split")
    uploads = []
    for name, (_, file), label_field, split_field in zip(
        names, files, label_fields, split_fields, strict=True
    ):
        uploads.append(
            Upload(name, file, _labels(label_field), _split(split_field, name))
        )
    return uploads


def import_uploads(
    project: Project, uploads: Sequence[Upload], max_bytes: int
) -> ImportReport:
    """Imports uploaded files into ``project``; returns the import's report.

    Raises:
        PayloadTooLargeError: A file is larger than ``max_bytes``.
        ImageError: Every file was refused (the message names each).
    """
    refused = _not_images(uploads)
    named = {problem.name for problem in refused}
    images = [upload for upload in uploads if upload.name not in named]
    report = ImportReport(source="upload", layout="upload")
    if images:
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=project.workspace.scratch))
        try:
            _stage(images, folder, max_bytes)
            report = project.import_path(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    report = replace(report, source="upload", layout="upload")
    report.errors.extend(refused)
    refuse_if_nothing_accepted(report)
    return report


def import_archive(
    project: Project, name: str | None, file: BinaryIO, *, resplit: bool
) -> ImportReport:
    """Imports an uploaded ``.zip`` in any layout the importer reads.

    Raises:
        ValidationError: The file name does not end in ``.zip``.
        ImportFormatError: The archive is unreadable, in no known layout, or has a
            member that would escape its folder.
        ImageError: Every file was refused.
    """
    archive_name = safe_name(name)
    if not archive_name.lower().endswith(".zip"):
        raise ValidationError(
            f"file {archive_name!r} is not a .zip; send single images to the images "
            "upload route instead"
        )
    folder = Path(tempfile.mkdtemp(prefix="archive-", dir=project.workspace.scratch))
    path = folder / archive_name
    try:
        with path.open("wb") as sink:
            shutil.copyfileobj(file, sink, _COPY_CHUNK)
        report = project.import_path(path, resplit=resplit)
    except PigeonholeError as error:
        # Name the upload, not the scratch path the client never saw.
        raise type(error)(str(error).replace(str(path), archive_name)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = replace(report, source=archive_name)
    refuse_if_nothing_accepted(report)
    return report


def refuse_if_nothing_accepted(report: ImportReport) -> None:
    """Raises when files came in and every one of them was refused.

    Raises:
        ImageError: Naming the first few refused files with their reasons.
    """
    if not report.errors or report.added or report.unchanged or report.duplicates:
        return
    shown = "; ".join(f"{p.name}: {p.reason}" for p in report.errors[:_SHOWN_PROBLEMS])
    more = len(report.errors) - _SHOWN_PROBLEMS
    suffix = f"; and {more} more" if more > 0 else ""
    raise ImageError(f"every uploaded file was refused: {shown}{suffix}")


def safe_name(name: str | None) -> str:
    """A file name without folders, odd characters or a leading dot."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    cleaned = _UNSAFE_CHARACTERS.sub("_", base).lstrip(". ").rstrip()
    if len(cleaned) > 200:
        path = PurePosixPath(cleaned)
        cleaned = path.stem[:180] + path.suffix[:20]
    return cleaned or "upload"


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with repeats renamed ``stem-2.ext``, ``stem-3.ext`` and so on."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 1
        while candidate.lower() in seen:
            number += 1
            path = PurePosixPath(name)
            candidate = f"{path.stem}-{number}{path.suffix}"
        seen.add(candidate.lower())
        unique.append(candidate)
    return unique


def _stage(uploads: Sequence[Upload], folder: Path, max_bytes: int) -> None:
    """Writes the CSV layout: files under ``images/``, their labels in a CSV."""
    images = folder / "images"
    images.mkdir()
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table)
        writer.writerow(["filename", "labels", "split"])
        for upload in uploads:
            _copy_limited(upload, images / upload.name, max_bytes)
            split = upload.split.value if upload.split else ""
            labels = LABEL_SEPARATOR.join(upload.labels)
            writer.writerow([upload.name, labels, split])


def _not_images(uploads: Sequence[Upload]) -> list[Problem]:
    """Files refused by name, as an import refuses them in a folder."""
    problems = []
    for upload in uploads:
        suffix = PurePosixPath(upload.name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            problems.append(
                Problem(
                    upload.name,
                    f"skipped: {suffix or '(no suffix)'} is not a supported image "
                    f"type; name the file with one of {_ACCEPTED_SUFFIXES}",
                )
            )
    return problems


def _copy_limited(upload: Upload, target: Path, max_bytes: int) -> None:
    written = 0
    with target.open("wb") as sink:
        while chunk := upload.file.read(_COPY_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise PayloadTooLargeError(
                    f"file {upload.name!r} is over the limit of {size_text(max_bytes)}"
                    " per file; shrink it or raise the server's max_upload_bytes"
                )
            sink.write(chunk)


def _per_file(values: Sequence[str] | None, count: int, what: str) -> list[str]:
    if not values:
        return [""] * count
    if len(values) == 1:
        return list(values) * count
    if len(values) == count:
        return list(values)
    raise ValidationError(
        f"got {len(values)} {what} fields for {count} files; give one per file, in "
        "the order of the files, or one for all of them"
    )


def _labels(field: str) -> tuple[str, ...]:
    parts = (part.strip() for part in field.split(LABEL_SEPARATOR))
    return tuple(dict.fromkeys(part for part in parts if part))


def _split(field: str, name: str) -> Split | None:
    if not field.strip():
        return None
    try:
        return Split.parse(field)
    except ValidationError as error:
        raise ValidationError(f"file {name!r}: {error}") from None

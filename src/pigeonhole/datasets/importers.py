"""Reading dataset layouts: which files, with which labels and which split.

An importer only lists what a source holds; :mod:`pigeonhole.datasets.ingest` decodes,
stores and records it. Supported layouts:

- class folders: ``root/<class>/<image>``; images directly in ``root`` are unlabelled;
- split class folders: ``root/{train,valid,val,test}/<class>/<image>``, as in a
  Roboflow single-label classification export;
- Roboflow multi-label: ``root/<split>/_classes.csv`` beside the images, header
  ``filename`` then one column per class holding 1 where the image has that label
  (also a single ``_classes.csv`` in ``root``);
- CSV: ``filename,labels`` (labels separated by ``;``, an optional ``split`` column)
  beside an ``images`` folder or the images themselves;
- a single image file (unlabelled).

Example:
    >>> source = detect(Path("flowers"))  # doctest: +SKIP
    >>> source.layout, source.class_names  # doctest: +SKIP
    (<Layout.CLASS_FOLDERS: 'class-folders'>, ['daisy', 'roses'])
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

from pigeonhole.domain import Split
from pigeonhole.errors import ImportFormatError, ValidationError
from pigeonhole.images import IMAGE_SUFFIXES

ROBOFLOW_CSV = "_classes.csv"
_SPLIT_NAMES = {"train": Split.TRAIN, "valid": Split.VALID, "val": Split.VALID}
_SPLIT_NAMES |= {"validation": Split.VALID, "test": Split.TEST}
_SKIPPED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}
_METADATA_SUFFIXES = {".csv", ".txt", ".md", ".json", ".yaml", ".yml"}


class Layout(StrEnum):
    """The shape of an import source."""

    CLASS_FOLDERS = "class-folders"
    SPLIT_CLASS_FOLDERS = "split-class-folders"
    ROBOFLOW_MULTILABEL = "roboflow-multilabel"
    CSV = "csv"
    SINGLE_IMAGE = "single-image"


@dataclass(frozen=True)
class SourceRecord:
    """One file to import.

    Attributes:
        path: Where the bytes are.
        name: The path relative to the source root, with ``/`` separators.
        labels: Class names; empty for an unlabelled image.
        split: The split the source put it in, if any.
    """

    path: Path
    name: str
    labels: tuple[str, ...]
    split: Split | None = None


@dataclass(frozen=True)
class SourceProblem:
    """A file or row that cannot be imported, with the reason."""

    name: str
    reason: str


@dataclass
class ImportSource:
    """What :func:`detect` found: the layout, the classes and the records."""

    layout: Layout
    root: Path
    class_names: list[str]
    records: list[SourceRecord] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)

    def __iter__(self) -> Iterator[SourceRecord]:
        return iter(self.records)


def detect(root: Path) -> ImportSource:
    """Finds the layout of ``root`` and lists its images.

    Raises:
        ImportFormatError: ``root`` is missing, or holds no images in any layout.
    """
    root = Path(root)
    if not root.exists():
        raise ImportFormatError(f"{root}: no such file or folder")
    if root.is_file():
        return _from_file(root)
    splits = _split_folders(root)
    if splits:
        if any((folder / ROBOFLOW_CSV).is_file() for folder in splits.values()):
            return _roboflow(root, splits)
        return _class_folders(root, splits)
    if (root / ROBOFLOW_CSV).is_file():
        return _roboflow(root, {None: root})
    label_csv = _label_csv(root)
    if label_csv is not None:
        return _csv(label_csv, _images_folder(root))
    return _class_folders(root, {None: root})


def _from_file(path: Path) -> ImportSource:
    if path.suffix.lower() == ".csv":
        if path.name == ROBOFLOW_CSV:
            return _roboflow(path.parent, {None: path.parent})
        return _csv(path, _images_folder(path.parent))
    if path.suffix.lower() in IMAGE_SUFFIXES:
        record = SourceRecord(path=path, name=path.name, labels=())
        return ImportSource(Layout.SINGLE_IMAGE, path.parent, [], [record])
    raise ImportFormatError(
        f"{path}: cannot import a {path.suffix or 'suffix-less'} file; give a folder, "
        "a .zip, a .csv of filename,labels or an image"
    )


def _split_folders(root: Path) -> dict[Split | None, Path]:
    found: dict[Split | None, Path] = {}
    for child in _children(root):
        split = _SPLIT_NAMES.get(child.name.lower())
        if child.is_dir() and split is not None:
            if split in found:
                raise ImportFormatError(
                    f"{root}: both {found[split].name}/ and {child.name}/ hold the "
                    f"{split.value} split; keep one of them"
                )
            found[split] = child
    return found


def _class_folders(root: Path, splits: dict[Split | None, Path]) -> ImportSource:
    layout = Layout.CLASS_FOLDERS if None in splits else Layout.SPLIT_CLASS_FOLDERS
    source = ImportSource(layout, root, [])
    classes: set[str] = set()
    for split, folder in splits.items():
        for child in _children(folder):
            if child.is_dir():
                classes.add(child.name)
                for path in _images_under(child, source):
                    name = path.relative_to(root).as_posix()
                    source.records.append(
                        SourceRecord(path, name, (child.name,), split)
                    )
            elif _is_image(child):
                name = child.relative_to(root).as_posix()
                source.records.append(SourceRecord(child, name, (), split))
            else:
                _skip(child, root, source)
    source.class_names = sorted(classes)
    if not source.records:
        raise ImportFormatError(
            f"{root}: found no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in class "
            "folders, split folders, a _classes.csv or a filename,labels CSV"
        )
    return source


def _roboflow(root: Path, splits: dict[Split | None, Path]) -> ImportSource:
    source = ImportSource(Layout.ROBOFLOW_MULTILABEL, root, [])
    for split, folder in splits.items():
        table = folder / ROBOFLOW_CSV
        if not table.is_file():
            source.problems.append(
                SourceProblem(folder.name, f"no {ROBOFLOW_CSV} in this split folder")
            )
            continue
        for record in _read_roboflow_table(root, table, split, source):
            source.records.append(record)
    return source


def _read_roboflow_table(
    root: Path, table: Path, split: Split | None, source: ImportSource
) -> Iterator[SourceRecord]:
    with _utf8(table) as file:
        rows = csv.reader(file)
        header = [cell.strip() for cell in next(rows, [])]
        if len(header) < 2 or header[0].lower() != "filename":
            raise ImportFormatError(
                f"{table}: header must be 'filename' then one column per class, "
                f"got {header!r}"
            )
        classes = header[1:]
        for name in classes:
            if name not in source.class_names:
                source.class_names.append(name)
        for line, row in enumerate(rows, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            record = _roboflow_row(table, line, row, classes, split, root, source)
            if record is not None:
                yield record


def _roboflow_row(
    table: Path,
    line: int,
    row: list[str],
    classes: list[str],
    split: Split | None,
    root: Path,
    source: ImportSource,
) -> SourceRecord | None:
    where = f"{table.name} line {line}"
    if len(row) != len(classes) + 1:
        source.problems.append(
            SourceProblem(where, f"has {len(row)} cells, header has {len(classes) + 1}")
        )
        return None
    flags = [cell.strip() for cell in row[1:]]
    bad = [flag for flag in flags if flag not in ("0", "1", "")]
    if bad:
        source.problems.append(
            SourceProblem(where, f"class cells must be 0 or 1, got {bad[0]!r}")
        )
        return None
    labels = tuple(
        name for name, flag in zip(classes, flags, strict=True) if flag == "1"
    )
    path = table.parent / row[0]
    return _existing(path, root, labels, split, where, source)


def _label_csv(root: Path) -> Path | None:
    for candidate in sorted(root.glob("*.csv")):
        # Only the header matters here: a stray CSV in another encoding is no
        # label table, and must not stop a class-folder import.
        with candidate.open("rb") as file:
            first = file.readline().decode("utf-8-sig", errors="replace")
        header = [cell.strip().lower() for cell in next(csv.reader([first]), [])]
        if header[:2] == ["filename", "labels"] or header[:2] == ["filename", "label"]:
            return candidate
    return None


def _utf8(table: Path) -> io.StringIO:
    """The text of a CSV file, which must be UTF-8 (a BOM is allowed)."""
    try:
        text = table.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFormatError(
            f"{table}: not UTF-8 text (at byte {error.start}); save the file as "
            "UTF-8 and import again"
        ) from None
    return io.StringIO(text, newline="")


def _images_folder(folder: Path) -> Path:
    images = folder / "images"
    return images if images.is_dir() else folder


def _csv(table: Path, images: Path) -> ImportSource:
    source = ImportSource(Layout.CSV, images, [])
    listed: set[str] = set()
    with _utf8(table) as file:
        rows = csv.DictReader(file)
        fields = [name.strip().lower() for name in rows.fieldnames or []]
        rows.fieldnames = fields
        label_field = "labels" if "labels" in fields else "label"
        if "filename" not in fields or label_field not in fields:
            raise ImportFormatError(
                f"{table}: header must start with filename,labels, got {fields!r}"
            )
        for line, row in enumerate(rows, start=2):
            # A refused row's file must not come back in as an unlabelled image.
            listed.add(PurePosixPath((row.get("filename") or "").strip()).as_posix())
            record = _csv_row(table, line, row, label_field, images, source)
            if record is not None:
                listed.add(record.name)
                source.records.append(record)
    _add_unlisted(source, images, listed)
    return source


def _csv_row(
    table: Path,
    line: int,
    row: dict[str, str],
    label_field: str,
    images: Path,
    source: ImportSource,
) -> SourceRecord | None:
    where = f"{table.name} line {line}"
    filename = (row.get("filename") or "").strip()
    if not filename:
        source.problems.append(SourceProblem(where, "empty filename"))
        return None
    labels = tuple(
        dict.fromkeys(p.strip() for p in (row.get(label_field) or "").split(";"))
    )
    labels = tuple(label for label in labels if label)
    for label in labels:
        if label not in source.class_names:
            source.class_names.append(label)
    split = None
    if row.get("split"):
        try:
            split = Split.parse(row["split"])
        except ValidationError as error:
            source.problems.append(SourceProblem(where, str(error)))
            return None
    return _existing(images / filename, images, labels, split, where, source)


def _add_unlisted(source: ImportSource, images: Path, listed: set[str]) -> None:
    for path in _images_under(images, source):
        name = path.relative_to(images).as_posix()
        if name not in listed:
            source.records.append(SourceRecord(path, name, ()))


def _existing(
    path: Path,
    root: Path,
    labels: tuple[str, ...],
    split: Split | None,
    where: str,
    source: ImportSource,
) -> SourceRecord | None:
    resolved_root = root.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(resolved_root):
        source.problems.append(
            SourceProblem(where, f"{path.name!r} points outside {root}")
        )
        return None
    if not path.is_file():
        source.problems.append(
            SourceProblem(where, f"lists {path.name!r}, which is not in {path.parent}")
        )
        return None
    name = resolved.relative_to(resolved_root).as_posix()
    return SourceRecord(path, name, labels, split)


def _children(folder: Path) -> list[Path]:
    return sorted(
        child
        for child in folder.iterdir()
        if not child.name.startswith(".") and child.name not in _SKIPPED_NAMES
    )


def _images_under(folder: Path, source: ImportSource) -> Iterator[Path]:
    for child in _children(folder):
        if child.is_dir():
            yield from _images_under(child, source)
        elif _is_image(child):
            yield child
        else:
            _skip(child, source.root, source)


def _skip(path: Path, root: Path, source: ImportSource) -> None:
    """Reports a file that is neither an image nor dataset metadata."""
    if path.is_file() and path.suffix.lower() not in _METADATA_SUFFIXES:
        name = (
            path.relative_to(root).as_posix()
            if path.is_relative_to(root)
            else path.name
        )
        suffix = path.suffix or "(no suffix)"
        source.problems.append(
            SourceProblem(name, f"skipped: {suffix} is not a supported image type")
        )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES

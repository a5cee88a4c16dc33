"""Writing a dataset version as files other tools (and our importers) read.

- ``folders``: ``<split>/<class>/<file>``, the class-folder layout of torchvision's
  ``ImageFolder`` and of a Roboflow single-label export; single-label versions only.
- ``multilabel-csv``: ``<split>/<file>`` beside ``<split>/_classes.csv`` holding
  ``filename`` and one 0/1 column per class, as a Roboflow multi-label export has it.

Both get ``manifest.json`` at the top, the version's frozen manifest.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from pigeonhole.datasets.importers import ROBOFLOW_CSV
from pigeonhole.errors import ValidationError

if TYPE_CHECKING:
    from pigeonhole.datasets.versions import DatasetVersion, VersionItem

FORMATS = ("folders", "multilabel-csv")


def export_version(version: DatasetVersion, folder: Path, format: str) -> Path:
    """Writes ``version`` into ``folder`` in ``format``; see DatasetVersion.export."""
    if format not in FORMATS:
        raise ValidationError(
            f"export format {format!r} is not one of: {', '.join(FORMATS)}"
        )
    if folder.exists() and any(folder.iterdir()):
        raise ValidationError(f"{folder} is not empty; export into a new folder")
    items = version.items()
    if format == "folders":
        _check_folder_layout(version, items)
    folder.mkdir(parents=True, exist_ok=True)
    blobs = version.project.workspace.blobs
    for item in items:
        target = folder / _relative_path(item, format)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blobs.get(item.sha256))
    if format == "multilabel-csv":
        _write_class_tables(folder, items, version.class_names)
    manifest = json.dumps(version.manifest(), indent=1, ensure_ascii=False)
    (folder / "manifest.json").write_text(manifest + "\n", encoding="utf-8")
    return folder


def _check_folder_layout(version: DatasetVersion, items: list[VersionItem]) -> None:
    if any(len(item.labels) != 1 for item in items):
        raise ValidationError(
            f"version {version.id} has images with several labels (or none); "
            "class folders hold one class per image: use format='multilabel-csv'"
        )
    for name in sorted({item.labels[0] for item in items}):
        # A class name becomes a folder: it must not climb out of the export.
        if name in (".", "..") or "/" in name or "\\" in name:
            raise ValidationError(
                f"class {name!r} of version {version.id} cannot be a folder name "
                "(it has a path separator or is '.' or '..'): use "
                "format='multilabel-csv'"
            )


def _relative_path(item: VersionItem, format: str) -> Path:
    if format == "folders":
        return Path(item.split.value, item.labels[0], item.name)
    return Path(item.split.value, item.name)


def _write_class_tables(
    folder: Path, items: list[VersionItem], class_names: list[str]
) -> None:
    by_split: dict[str, list[VersionItem]] = defaultdict(list)
    for item in items:
        by_split[item.split.value].append(item)
    for split, members in by_split.items():
        with (folder / split / ROBOFLOW_CSV).open(
            "w", newline="", encoding="utf-8"
        ) as file:
            writer = csv.writer(file)
            writer.writerow(["filename", *class_names])
            for item in members:
                flags = [int(name in item.labels) for name in class_names]
                writer.writerow([item.name, *flags])

"""The import engine across chunk boundaries: bulk-inserted rows, repeats, re-runs."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from pigeonhole.datasets.ingest import CHUNK
from pigeonhole.storage.database import ImageLabelRow, ImageRow, ImageSourceRow
from pigeonhole.workspace import Workspace

DISTINCT = CHUNK * 2 + 10  # three chunks


def _folder(root: Path) -> Path:
    """``DISTINCT`` distinct images in two classes, plus copies in and across chunks."""
    for index in range(DISTINCT):
        folder = root / ("even" if index % 2 == 0 else "odd")
        folder.mkdir(parents=True, exist_ok=True)
        colour = (index % 256, (index * 7) % 256, (index // 256) * 40)
        Image.new("RGB", (8 + index % 5, 8), colour).save(folder / f"i{index:04d}.png")
    # One copy lands in the same chunk as its original, one two chunks later.
    shutil.copy(root / "even" / "i0000.png", root / "even" / "i0000-copy.png")
    shutil.copy(root / "odd" / "i0001.png", root / "odd" / "z-late-copy.png")
    return root


def _count(workspace: Workspace, table: type) -> int:
    with workspace.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_import_over_several_chunks_stores_each_image_once(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = workspace.create_project("Chunks")
    source = _folder(tmp_path / "source")

    report = project.import_path(source)

    assert (report.found, report.added, report.errors) == (DISTINCT + 2, DISTINCT, [])
    pairs = {frozenset((d.name, d.duplicate_of)) for d in report.duplicates}
    assert pairs == {
        frozenset(("even/i0000.png", "even/i0000-copy.png")),
        frozenset(("odd/i0001.png", "odd/z-late-copy.png")),
    }
    assert _count(workspace, ImageRow) == DISTINCT
    assert _count(workspace, ImageLabelRow) == DISTINCT
    assert _count(workspace, ImageSourceRow) == DISTINCT + 2
    first = project.images()[0]
    assert first.labels == ("even",)
    assert project.load_image(first.id).size[1] == 8


def test_import_over_several_chunks_twice_adds_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = workspace.create_project("Chunks")
    source = _folder(tmp_path / "source")
    project.import_path(source)

    again = project.import_path(source)

    assert (again.added, again.unchanged, again.duplicates) == (0, DISTINCT + 2, [])
    assert _count(workspace, ImageSourceRow) == DISTINCT + 2

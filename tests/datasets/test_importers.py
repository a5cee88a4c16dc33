from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

import imagegen
from pigeonhole.datasets import ingest
from pigeonhole.datasets.ingest import Duplicate
from pigeonhole.errors import ImportFormatError, UnsafeArchiveError
from pigeonhole.project import Project
from pigeonhole.storage.database import (
    ImageLabelRow,
    ImageRow,
    ImageSourceRow,
    ImportRow,
)
from pigeonhole.workspace import Workspace

Builder = Callable[[Path], imagegen.Dataset]

LAYOUTS: list[tuple[str, Builder]] = [
    ("class-folders", imagegen.class_folders),
    ("split-valid", lambda root: imagegen.split_class_folders(root, "valid")),
    ("split-val", lambda root: imagegen.split_class_folders(root, "val")),
    ("roboflow", imagegen.roboflow_multilabel),
    ("csv", imagegen.labels_csv),
    ("unlabelled", imagegen.unlabelled),
]
PACKINGS = ["folder", "zip", "zip-in-folder"]


def source(tmp_path: Path, build: Builder, packing: str) -> imagegen.Dataset:
    """Builds a dataset as a folder, a zip, or a zip wrapping one top folder."""
    dataset = build(tmp_path / "source")
    if packing == "folder":
        return dataset
    wrap = "dataset" if packing == "zip-in-folder" else None
    return imagegen.zipped(dataset, tmp_path / "source.zip", wrap=wrap)


def labels_of(project: Project) -> dict[str, tuple[str, ...]]:
    return {image.filename: image.labels for image in project.images()}


def splits_of(project: Project) -> dict[str, str | None]:
    return {
        image.filename: image.split.value if image.split else None
        for image in project.images()
    }


def assert_consistent(workspace: Workspace, project: Project) -> None:
    """Every image has its blob and one source row; every label names a class."""
    classes = set(project.class_names)
    for image in project.images():
        assert workspace.blobs.has(image.sha256), image.filename
        assert set(image.labels) <= classes, image.filename
    with workspace.sessions() as session:
        images = session.scalar(select(func.count()).select_from(ImageRow))
        sources = session.scalar(
            select(func.count(func.distinct(ImageSourceRow.image_id)))
        )
        orphans = session.scalar(
            select(func.count())
            .select_from(ImageLabelRow)
            .where(~ImageLabelRow.image_id.in_(select(ImageRow.id)))
        )
    assert sources == images == project.count_images()
    assert orphans == 0


# The same checks for every layout


# One folder of unlabelled images wrapped in a zip is one class folder instead: see
# test_a_zip_holding_one_folder_of_images_imports_that_class.
EVERY_PACKING = [
    pytest.param(build, packing, id=f"{packing}-{name}")
    for packing in PACKINGS
    for name, build in LAYOUTS
    if (name, packing) != ("unlabelled", "zip-in-folder")
]


@pytest.mark.parametrize(("build", "packing"), EVERY_PACKING)
def test_import_keeps_layout_classes_labels_and_splits(
    workspace: Workspace, tmp_path: Path, build: Builder, packing: str
) -> None:
    dataset = source(tmp_path, build, packing)
    project = workspace.create_project("Import", type=dataset.project_type)

    report = project.import_path(dataset.path)

    count = len(dataset.labels)
    assert report.layout == dataset.layout
    assert (report.found, report.added, report.unchanged) == (count, count, 0)
    assert (report.errors, report.duplicates) == ([], [])
    assert report.classes_added == dataset.class_names
    assert project.class_names == dataset.class_names
    assert labels_of(project) == dataset.labels
    assert splits_of(project) == dataset.splits
    assert_consistent(workspace, project)
    assert list(workspace.scratch.iterdir()) == []


def test_a_zip_holding_one_folder_of_images_imports_that_class(
    workspace: Workspace, tmp_path: Path
) -> None:
    # cats.zip holding cats/*.png adds cats to a project, as a class folder would.
    dataset = imagegen.unlabelled(tmp_path / "source")
    archive = imagegen.zipped(dataset, tmp_path / "cats.zip", wrap="cats")
    project = workspace.create_project("Pets")

    report = project.import_path(archive.path)

    assert report.classes_added == ["cats"]
    assert {image.labels for image in project.images()} == {("cats",)}
    assert report.added == len(dataset.labels)


@pytest.mark.parametrize("packing", ["folder", "zip"])
@pytest.mark.parametrize("build", [b for _, b in LAYOUTS], ids=[n for n, _ in LAYOUTS])
def test_resplit_drops_the_source_splits(
    workspace: Workspace, tmp_path: Path, build: Builder, packing: str
) -> None:
    dataset = source(tmp_path, build, packing)
    project = workspace.create_project("Import", type=dataset.project_type)

    report = project.import_path(dataset.path, resplit=True)

    assert report.added == len(dataset.labels)
    assert labels_of(project) == dataset.labels
    assert set(splits_of(project).values()) == {None}


@pytest.mark.parametrize("packing", ["folder", "zip"])
@pytest.mark.parametrize("build", [b for _, b in LAYOUTS], ids=[n for n, _ in LAYOUTS])
def test_importing_twice_adds_nothing(
    workspace: Workspace, tmp_path: Path, build: Builder, packing: str
) -> None:
    dataset = source(tmp_path, build, packing)
    project = workspace.create_project("Import", type=dataset.project_type)
    first = project.import_path(dataset.path)

    again = project.import_path(dataset.path)

    assert again.found == first.found
    assert (again.added, again.unchanged) == (0, again.found)
    assert (again.duplicates, again.errors, again.classes_added) == ([], [], [])
    assert project.count_images() == first.added
    assert labels_of(project) == dataset.labels
    assert splits_of(project) == dataset.splits


def test_progress_is_reported_to_the_end(workspace: Workspace, tmp_path) -> None:
    dataset = imagegen.class_folders(tmp_path / "source")
    calls: list[tuple[str, int, int | None]] = []

    workspace.create_project("P").import_path(
        dataset.path, progress=lambda *args: calls.append(args)
    )

    assert calls[0] == ("import", 0, len(dataset.labels))
    assert calls[-1] == ("import", len(dataset.labels), len(dataset.labels))


def test_single_image_file_is_imported_unlabelled(workspace, tmp_path) -> None:
    path = imagegen.write(tmp_path / "only one.png", imagegen.png("single"))

    report = workspace.create_project("P").import_path(path)

    assert (report.layout, report.added) == ("single-image", 1)


# Duplicates


def test_exact_duplicates_are_stored_once_and_reported(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "source"
    original = imagegen.write_picture(root, "cat/a.png")
    imagegen.write(root / "cat/b copy.png", original.read_bytes())
    imagegen.write(root / "dog/c as dog.png", original.read_bytes())
    imagegen.write_picture(root, "dog/d.png")
    project = workspace.create_project("P")

    report = project.import_path(root)
    later = project.add_image(original, filename="again.png")

    assert (report.found, report.added) == (4, 2)
    assert report.duplicates == [
        Duplicate("cat/b copy.png", "cat/a.png"),
        Duplicate("dog/c as dog.png", "cat/a.png"),
    ]
    assert labels_of(project) == {"cat/a.png": ("cat",), "dog/d.png": ("dog",)}
    assert later.filename == "cat/a.png"
    blobs = [path for path in workspace.blobs.root.rglob("*") if path.is_file()]
    assert len(blobs) == 2
    assert_consistent(workspace, project)


def test_a_later_import_labels_unlabelled_copies(workspace, tmp_path) -> None:
    project = workspace.create_project("P")
    loose = imagegen.unlabelled(tmp_path / "loose", count=2)
    project.import_path(loose.path)
    sorted_root = tmp_path / "sorted"
    for index, name in enumerate(loose.labels):
        data = (loose.path / name).read_bytes()
        imagegen.write(sorted_root / ("cat" if index else "dog") / name, data)

    report = project.import_path(sorted_root)

    assert (report.added, report.labelled, len(report.duplicates)) == (0, 2, 2)
    assert sorted(labels_of(project).values()) == [("cat",), ("dog",)]


# Bad files, bad rows and bad archives


def test_bad_files_are_reported_by_name_and_the_rest_imported(
    workspace: Workspace, tmp_path: Path
) -> None:
    dataset = imagegen.class_folders(tmp_path / "source")
    good, bad = imagegen.write_corpus(dataset.path / "dog")
    project = workspace.create_project("P")

    report = project.import_path(dataset.path)

    expected = {f"dog/{name}": ("dog",) for name in good} | dataset.labels
    assert labels_of(project) == expected
    assert report.added == len(expected)
    reasons = {problem.name: problem.reason for problem in report.errors}
    assert sorted(reasons) == sorted(f"dog/{name}" for name in bad)
    assert "truncated" in reasons["dog/truncated.jpg"]
    assert "empty file" in reasons["dog/empty.png"]
    assert "not an image" in reasons["dog/words.jpg"]
    assert "too many pixels" in reasons["dog/bomb.png"]
    assert not any(reason.startswith("dog/") for reason in reasons.values())
    assert_consistent(workspace, project)


def test_non_image_files_are_reported_as_skipped(workspace, tmp_path) -> None:
    dataset = imagegen.class_folders(tmp_path / "source")
    imagegen.write(dataset.path / "cat" / "scan.pdf", b"%PDF-1.4")
    imagegen.write(dataset.path / "cat" / "LICENSE", b"free")
    imagegen.write(dataset.path / "cat" / "notes.txt", b"metadata, not reported")
    imagegen.write(dataset.path / "cat" / ".DS_Store", b"\0")
    imagegen.write(dataset.path / "movie.mp4", b"\0\0")
    project = workspace.create_project("P")

    report = project.import_path(dataset.path)

    assert {problem.name: problem.reason for problem in report.errors} == {
        "cat/scan.pdf": "skipped: .pdf is not a supported image type",
        "cat/LICENSE": "skipped: (no suffix) is not a supported image type",
        "movie.mp4": "skipped: .mp4 is not a supported image type",
    }
    assert report.added == len(dataset.labels)


@pytest.mark.parametrize(
    ("member", "link", "message"),
    [
        ("../evil.jpg", False, "would be written outside"),
        ("nested/../../evil.jpg", False, "would be written outside"),
        ("ABSOLUTE", False, "would be written outside"),
        ("C:/evil.jpg", False, "would be written outside"),
        ("evil.jpg", True, "is a link or special file"),
    ],
    ids=["parent", "nested-parent", "absolute", "drive", "symlink"],
)
def test_unsafe_zip_is_refused_and_nothing_written(
    workspace: Workspace, tmp_path: Path, member: str, link: bool, message: str
) -> None:
    if member == "ABSOLUTE":
        member = str(tmp_path / "evil.jpg")
    archive = imagegen.unsafe_zip(tmp_path / "unsafe.zip", member, link=link)
    project = workspace.create_project("P")

    with pytest.raises(UnsafeArchiveError, match=message):
        project.import_path(archive)

    assert list(tmp_path.rglob("*evil*")) == []
    assert list(workspace.scratch.iterdir()) == []
    assert project.count_images() == 0


def test_zip_members_without_file_type_bits_are_accepted(
    workspace: Workspace, tmp_path: Path
) -> None:
    archive = tmp_path / "written.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("cat/one.png", imagegen.png("one"))  # mode 0o600, no type
        bundle.writestr("dog/", b"")
        bundle.writestr("dog/two.png", imagegen.png("two"))

    report = workspace.create_project("P").import_path(archive)

    assert (report.layout, report.added, report.errors) == ("class-folders", 2, [])


def test_a_file_that_is_not_a_zip_is_refused(workspace, tmp_path) -> None:
    archive = imagegen.write(tmp_path / "broken.zip", b"PK\3\4 not really")

    with pytest.raises(ImportFormatError, match=r"broken\.zip: not a readable zip"):
        workspace.create_project("P").import_path(archive)


def test_single_label_project_refuses_multi_label_rows_by_name(
    workspace: Workspace, tmp_path: Path
) -> None:
    dataset = imagegen.roboflow_multilabel(tmp_path / "source")
    project = workspace.create_project("Single", type="single-label")

    report = project.import_path(dataset.path)

    several = {name for name, labels in dataset.labels.items() if len(labels) > 1}
    assert {problem.name for problem in report.errors} == several
    refused = next(p for p in report.errors if p.name == "train/b.jpg")
    assert refused.reason == (
        "has 2 labels (cat, dog) but project 'single' is single-label"
    )
    expected = {n: labels for n, labels in dataset.labels.items() if n not in several}
    assert labels_of(project) == expected


def test_csv_rows_naming_missing_files_are_reported(workspace, tmp_path) -> None:
    dataset = imagegen.labels_csv(tmp_path / "source")
    table = dataset.path / "labels.csv"
    table.write_text(table.read_text() + "ghost.png,red,train\n,red,\n")
    project = workspace.create_project("P")

    report = project.import_path(dataset.path)

    problems = {problem.name: problem.reason for problem in report.errors}
    assert problems["labels.csv line 7"].startswith("lists 'ghost.png', which is not")
    assert problems["labels.csv line 8"] == "empty filename"
    assert labels_of(project) == dataset.labels


def test_csv_row_with_a_bad_split_is_reported_not_imported(workspace, tmp_path):
    dataset = imagegen.labels_csv(tmp_path / "source")
    imagegen.write_picture(dataset.path / "images", "odd.png")
    table = dataset.path / "labels.csv"
    table.write_text(table.read_text() + "odd.png,red,holdout\n")
    project = workspace.create_project("P")

    report = project.import_path(dataset.path)

    assert [(p.name, p.reason) for p in report.errors] == [
        (
            "labels.csv line 7",
            "split 'holdout' is not one of: train, valid (or val), test",
        )
    ]
    assert labels_of(project) == dataset.labels


def test_roboflow_rows_with_bad_cells_are_reported(workspace, tmp_path) -> None:
    dataset = imagegen.roboflow_multilabel(tmp_path / "source")
    table = dataset.path / "test" / "_classes.csv"
    imagegen.write_picture(dataset.path / "test", "x.jpg")
    imagegen.write_picture(dataset.path / "test", "y.jpg")
    table.write_text(table.read_text() + "x.jpg, 1, 0\ny.jpg, 1, yes, 0\n")
    project = workspace.create_project("P", type="multi-label")

    report = project.import_path(dataset.path)

    assert {problem.name: problem.reason for problem in report.errors} == {
        "_classes.csv line 3": "has 3 cells, header has 4",
        "_classes.csv line 4": "class cells must be 0 or 1, got 'yes'",
    }
    assert labels_of(project) == dataset.labels


def test_a_folder_with_no_images_is_refused(workspace, tmp_path) -> None:
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)

    with pytest.raises(ImportFormatError, match="found no images"):
        workspace.create_project("P").import_path(empty)
    with pytest.raises(ImportFormatError, match="no such file or folder"):
        workspace.create_project("Q").import_path(tmp_path / "missing")


# Interrupted imports


def test_interrupted_import_leaves_whole_images_and_resumes(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = imagegen.split_class_folders(tmp_path / "source")
    project = workspace.create_project("P")
    store = ingest._store
    calls = 0

    def failing_second_chunk(chunk, target, result) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        store(chunk, target, result)

    monkeypatch.setattr(ingest, "CHUNK", 3)
    monkeypatch.setattr(ingest, "_store", failing_second_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        project.import_path(dataset.path)

    assert project.count_images() == 3
    assert_consistent(workspace, project)
    for image in project.images():
        assert image.labels == dataset.labels[image.filename]
        assert image.split.value == dataset.splits[image.filename]

    monkeypatch.setattr(ingest, "_store", store)
    report = project.import_path(dataset.path)

    assert (report.added, report.unchanged) == (len(dataset.labels) - 3, 3)
    assert labels_of(project) == dataset.labels
    assert splits_of(project) == dataset.splits
    assert_consistent(workspace, project)
    with workspace.sessions() as session:
        rows = session.scalars(select(ImportRow).order_by(ImportRow.id)).all()
        assert [row.status for row in rows] == ["interrupted", "done"]
        assert rows[0].report is not None
        assert rows[0].report["interrupted_by"] == "disk full"
        assert rows[0].finished_at is not None
        assert rows[0].finished_at.tzinfo is not None


def test_a_stray_csv_in_another_encoding_does_not_stop_an_import(
    workspace: Workspace, tmp_path: Path
) -> None:
    dataset = imagegen.class_folders(tmp_path / "source")
    (dataset.path / "notes.csv").write_bytes("Notes,café\n".encode("cp1252"))

    report = workspace.create_project("P").import_path(dataset.path)

    assert (report.layout, report.added) == ("class-folders", len(dataset.labels))


@pytest.mark.parametrize(
    ("build", "table"),
    [
        (imagegen.labels_csv, "labels.csv"),
        (imagegen.roboflow_multilabel, "train/_classes.csv"),
    ],
    ids=["csv", "roboflow"],
)
def test_a_label_table_that_is_not_utf8_is_refused(
    workspace: Workspace, tmp_path: Path, build: Builder, table: str
) -> None:
    dataset = build(tmp_path / "source")
    path = dataset.path / table
    path.write_bytes(path.read_bytes() + "\nsucré.png,0\n".encode("cp1252"))
    project = workspace.create_project("P", type=dataset.project_type)

    with pytest.raises(ImportFormatError, match=r"_?\w+\.csv: not UTF-8 text"):
        project.import_path(dataset.path)
    assert project.count_images() == 0

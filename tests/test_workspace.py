from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import imagegen
from pigeonhole.domain import ProjectType, Split
from pigeonhole.errors import (
    ConflictError,
    CorruptImageError,
    NotFoundError,
    ValidationError,
    WorkspaceError,
)
from pigeonhole.project import Project
from pigeonhole.storage.database import Base, table_names
from pigeonhole.workspace import MARKER, Workspace, check_slug, slugify

# Opening and creating


def test_init_writes_marker_database_and_blob_store(tmp_path: Path) -> None:
    root = tmp_path / "new" / "workspace"

    with Workspace.init(root) as workspace:
        assert workspace.root == root.resolve()

    marker = json.loads((root / MARKER).read_text())
    assert marker == {"format_version": 1, "database_url": None}
    assert (root / "pigeonhole.db").is_file()
    assert (root / "blobs").is_dir()


def test_init_on_an_existing_workspace_opens_it(workspace: Workspace) -> None:
    workspace.create_project("Bananas")

    with Workspace.init(workspace.root) as again:
        assert [project.slug for project in again.projects()] == ["bananas"]


def test_sqlite_file_holds_the_data_across_opens(workspace: Workspace) -> None:
    project = workspace.create_project("Kept", classes=["a"])
    project.add_image(imagegen.png("kept"), labels=["a"], filename="kept.png")
    workspace.close()

    database = workspace.root / "pigeonhole.db"
    assert workspace.database_url == f"sqlite:///{database}"
    assert database.stat().st_size > 0
    with Workspace.open(workspace.root) as reopened:
        found = reopened.project("kept")
        assert [image.filename for image in found.images()] == ["kept.png"]
        assert found.images()[0].labels == ("a",)
        assert "images" in table_names(reopened.engine)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: root.mkdir(), "is not a Pigeonhole workspace"),
        (lambda root: None, "is not a Pigeonhole workspace"),
    ],
    ids=["empty-folder", "missing"],
)
def test_open_refuses_a_folder_that_is_not_a_workspace(
    tmp_path: Path, setup, message: str
) -> None:
    root = tmp_path / "plain"
    setup(root)

    with pytest.raises(WorkspaceError, match=f"{message}.*pigeonhole init"):
        Workspace.open(root)


def test_init_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    with pytest.raises(WorkspaceError, match="folder with files and no pigeonhole"):
        Workspace.init(tmp_path)
    assert not (tmp_path / MARKER).exists()


def test_init_refuses_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")

    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.init(path)


def test_open_refuses_a_newer_format(tmp_path: Path) -> None:
    root = tmp_path / "future"
    root.mkdir()
    (root / MARKER).write_text(json.dumps({"format_version": 99}))

    with pytest.raises(WorkspaceError, match=r"newer Pigeonhole \(format 99"):
        Workspace.open(root)


def test_migrations_build_exactly_the_orm_schema(workspace: Workspace) -> None:
    with workspace.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, Base.metadata)

    assert differences == []
    assert set(Base.metadata.tables) <= set(table_names(workspace.engine))


# Projects


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Bananas", "bananas"),
        ("Bananas (ripe)", "bananas-ripe"),
        ("  Café   Crème ", "cafe-creme"),
        ("写真", "project"),
        ("x" * 150, "x" * 100),
    ],
    ids=["plain", "punctuation", "accents", "no-ascii", "long"],
)
def test_slug_is_derived_from_the_name(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    "slug",
    ["Upper", "two--hyphens", "-leading", "under_score", "sp ace", "a" * 101],
    ids=["upper", "double-hyphen", "leading", "underscore", "space", "long"],
)
def test_bad_slugs_are_refused(slug: str) -> None:
    with pytest.raises(ValidationError, match="lower-case letters and digits"):
        check_slug(slug)


def test_projects_with_the_same_slug_conflict(workspace: Workspace) -> None:
    workspace.create_project("Bananas")

    with pytest.raises(ConflictError, match="slug 'bananas' already exists"):
        workspace.create_project("bananas!")
    with pytest.raises(ConflictError, match="slug 'bananas' already exists"):
        workspace.create_project("Other", slug="bananas")
    assert [project.slug for project in workspace.projects()] == ["bananas"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "  "}, "non-empty name"),
        ({"name": "P", "slug": "Not OK"}, "lower-case letters"),
        ({"name": "P", "type": "binary"}, "project type 'binary' is not one of"),
        ({"name": "P", "classes": ["a", "b", "a"]}, "class names repeat: a"),
        ({"name": "P", "classes": ["a;b"]}, "without ';'"),
        ({"name": "P", "classes": [" "]}, "cannot be empty"),
    ],
    ids=["empty-name", "bad-slug", "bad-type", "repeated-class", "semicolon", "blank"],
)
def test_bad_project_arguments_are_refused(
    workspace: Workspace, arguments: dict, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        workspace.create_project(**arguments)
    assert workspace.projects() == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("single-label", ProjectType.SINGLE_LABEL),
        ("Multi_Label", ProjectType.MULTI_LABEL),
        (ProjectType.MULTI_LABEL, ProjectType.MULTI_LABEL),
    ],
    ids=["single", "multi-underscore", "enum"],
)
def test_project_types(workspace: Workspace, given, expected: ProjectType) -> None:
    workspace.create_project("Typed", type=given)

    assert workspace.project("typed").type is expected


def test_project_is_found_by_slug_name_or_id(workspace: Workspace) -> None:
    created = workspace.create_project("Ripe Bananas")

    for ref in ("ripe-bananas", "Ripe Bananas", created.id, str(created.id)):
        assert workspace.project(ref).id == created.id
    with pytest.raises(NotFoundError, match="no project 'apples'; projects: ripe-b"):
        workspace.project("apples")


def test_delete_project_removes_it_and_its_images(workspace: Workspace) -> None:
    project = workspace.create_project("Gone", classes=["a"])
    project.add_image(imagegen.png("gone"), labels=["a"])

    workspace.delete_project("gone")

    assert workspace.projects() == []
    with pytest.raises(NotFoundError):
        workspace.project("gone")


# Classes and labels


def _project(workspace: Workspace, type: str = "single-label") -> Project:
    return workspace.create_project("Fruit", type=type, classes=["pear", "apple"])


def _add(project: Project, count: int, **kwargs) -> list[int]:
    return [
        project.add_image(
            imagegen.png(f"{project.slug}-{index}"), filename=f"{index}.png", **kwargs
        ).id
        for index in range(count)
    ]


def test_classes_grow_in_order(workspace: Workspace) -> None:
    project = _project(workspace)

    added = project.add_classes(["plum", "pear", "fig"])
    ids = _add(project, 1)
    project.set_labels(ids, ["kiwi"])

    assert added == ["plum", "fig"]
    assert project.class_names == ["pear", "apple", "plum", "fig", "kiwi"]


def test_add_image_records_labels_split_and_size(workspace: Workspace) -> None:
    project = _project(workspace)
    data = imagegen.png("one", size=(48, 36))

    record = project.add_image(data, labels=["apple"], split="val", filename="1.png")
    again = project.add_image(data, labels=["pear"], filename="copy.png")

    assert (record.filename, record.width, record.height) == ("1.png", 48, 36)
    assert (record.labels, record.split) == (("apple",), Split.VALID)
    assert again == record
    assert project.count_images() == 1
    assert workspace.blobs.get(record.sha256) == data


def test_add_image_from_a_path_uses_its_name(workspace: Workspace, tmp_path) -> None:
    path = imagegen.write(tmp_path / "naïve café.png", imagegen.png("path"))

    record = _project(workspace).add_image(path)

    assert record.filename == "naïve café.png"
    assert record.labels == ()


def test_add_image_refuses_a_broken_file(workspace: Workspace) -> None:
    project = _project(workspace)

    with pytest.raises(CorruptImageError, match=r"cut\.jpg: cannot decode"):
        project.add_image(imagegen.truncated_jpeg(), filename="cut.jpg")
    assert project.count_images() == 0


def test_load_image_is_upright_rgb(workspace: Workspace) -> None:
    project = _project(workspace)
    record = project.add_image(imagegen.exif_rotated_jpeg(6), filename="side.jpg")

    image = project.load_image(record.id)

    assert image.mode == "RGB"
    assert image.size == (32, 48) == (record.width, record.height)
    assert np.asarray(image)[3, 3, 0] > 200


def test_set_add_and_remove_labels(workspace: Workspace) -> None:
    project = _project(workspace, "multi-label")
    first, second = _add(project, 2)

    assert project.set_labels([first, second], ["pear", "apple"]) == 2
    assert project.add_label([first], "fig") == 1
    assert project.add_label([first], "fig") == 0
    assert project.remove_label([first, second], "pear") == 2
    assert project.remove_label([first, second], "pear") == 0

    assert project.image(first).labels == ("apple", "fig")
    assert project.image(second).labels == ("apple",)
    assert project.set_labels([second], []) == 1
    assert project.image(second).labels == ()


def test_single_label_project_refuses_two_labels(workspace: Workspace) -> None:
    project = _project(workspace)
    (image_id,) = _add(project, 1, labels=["pear"])

    with pytest.raises(ValidationError, match="single-label; got 2 labels"):
        project.set_labels([image_id], ["pear", "apple"])
    with pytest.raises(ValidationError, match="single-label; got 2 labels"):
        project.add_image(imagegen.png("x"), labels=["pear", "apple"])
    with pytest.raises(ValidationError, match="use set_labels"):
        project.add_label([image_id], "apple")
    assert project.image(image_id).labels == ("pear",)


def test_set_labels_replaces_the_single_label(workspace: Workspace) -> None:
    project = _project(workspace)
    (image_id,) = _add(project, 1, labels=["pear"])

    project.set_labels([image_id], ["apple"])

    assert project.image(image_id).labels == ("apple",)


def test_labels_api_refuses_unknown_images_and_classes(workspace: Workspace) -> None:
    project = _project(workspace)
    (image_id,) = _add(project, 1)

    with pytest.raises(NotFoundError, match=r"has no image\(s\) 999"):
        project.set_labels([image_id, 999], ["pear"])
    with pytest.raises(NotFoundError, match="has no class 'plum'"):
        project.remove_label([image_id], "plum")
    with pytest.raises(NotFoundError, match="has no image 999"):
        project.image(999)
    assert project.image(image_id).labels == ()


def test_images_of_another_project_are_not_reachable(workspace: Workspace) -> None:
    mine = _project(workspace)
    other = workspace.create_project("Other")
    (theirs,) = _add(other, 1)

    with pytest.raises(NotFoundError, match=f"'fruit' has no image {theirs}"):
        mine.image(theirs)


def test_image_filters_and_counts(workspace: Workspace) -> None:
    project = _project(workspace)
    ids = _add(project, 6)
    project.set_labels(ids[:2], ["pear"])
    project.set_labels(ids[2:5], ["apple"])
    project.set_split(ids[:3], "train")
    project.set_split(ids[3:4], Split.TEST)

    cases = [
        ({}, ids),
        ({"label": "pear"}, ids[:2]),
        ({"label": "apple"}, ids[2:5]),
        ({"unlabelled": True}, ids[5:]),
        ({"split": "train"}, ids[:3]),
        ({"split": "test", "label": "apple"}, ids[3:4]),
        ({"split": "valid"}, []),
    ]
    for filters, expected in cases:
        assert [image.id for image in project.images(**filters)] == expected, filters
        assert project.count_images(**filters) == len(expected), filters
    page = project.images(offset=2, limit=3)
    assert [image.id for image in page] == ids[2:5]
    assert project.set_split(ids[:1], None) == 1
    assert project.image(ids[0]).split is None


def test_bad_split_name_is_refused(workspace: Workspace) -> None:
    project = _project(workspace)
    ids = _add(project, 1)

    with pytest.raises(ValidationError, match="split 'dev' is not one of"):
        project.set_split(ids, "dev")
    with pytest.raises(ValidationError, match="split 'dev' is not one of"):
        project.images(split="dev")

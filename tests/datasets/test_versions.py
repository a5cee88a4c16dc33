from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

import imagegen
from pigeonhole import images
from pigeonhole.config import DEFAULT_NEAR_DUPLICATE_DISTANCE
from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.datasets.splitting import SplitRatios
from pigeonhole.datasets.versions import DatasetVersion
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.project import Project
from pigeonhole.workspace import Workspace

CLASSES = ("ant", "bee", "wasp")
NEAR_PAIRS = ("ant/ant1.png", "bee/bee2.png", "wasp/wasp3.png", "wasp/wasp4.png")


def class_folders_with_near_copies(root: Path, per_class: int = 10) -> Path:
    """Class folders where four images also appear re-encoded under another name."""
    for class_name in CLASSES:
        for index in range(per_class):
            imagegen.write_picture(root, f"{class_name}/{class_name}{index}.png")
    for name in NEAR_PAIRS:
        copy = imagegen.near_copy(name)
        original = images.inspect((root / name).read_bytes()).phash
        distance = images.hamming(original, images.inspect(copy).phash)
        assert distance <= DEFAULT_NEAR_DUPLICATE_DISTANCE, name  # the fixture holds
        imagegen.write(root / f"{name.removesuffix('.png')} copy.jpg", copy)
    return root


def split_of(project: Project) -> dict[str, str | None]:
    return {
        image.filename: image.split.value if image.split else None
        for image in project.images()
    }


def labelled_project(workspace: Workspace, tmp_path: Path, name: str = "P") -> Project:
    dataset = imagegen.split_class_folders(tmp_path / "source")
    project = workspace.create_project(name)
    project.import_path(dataset.path)
    return project


# Splitting a project


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed0", "seed1", "seed2"])
def test_split_keeps_near_duplicates_together(
    workspace: Workspace, tmp_path: Path, seed: int
) -> None:
    project = workspace.create_project("P")
    project.import_path(class_folders_with_near_copies(tmp_path / "source"))

    summary = project.split(seed=seed)

    splits = split_of(project)
    for name in NEAR_PAIRS:
        copy = f"{name.removesuffix('.png')} copy.jpg"
        assert splits[name] == splits[copy], name
    assert summary.groups == len(NEAR_PAIRS)
    assert summary.assigned == project.count_images() == 34
    assert sum(summary.counts.values()) == 34
    assert set(splits.values()) == {"train", "valid", "test"}
    for class_name in CLASSES:
        assert sum(summary.class_counts[class_name].values()) >= 10


def test_same_seed_gives_the_same_split(workspace, tmp_path) -> None:
    root = class_folders_with_near_copies(tmp_path / "source")
    first = workspace.create_project("First")
    second = workspace.create_project("Second")
    first.import_path(root)
    second.import_path(root)

    first.split(SplitRatios(60, 20, 20), seed=5)
    second.split(SplitRatios(0.6, 0.2, 0.2), seed=5)

    assert split_of(first) == split_of(second)


def test_resplitting_after_adding_images_moves_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = workspace.create_project("P")
    project.import_path(class_folders_with_near_copies(tmp_path / "first"))
    project.split(seed=0)
    before = split_of(project)
    more = tmp_path / "second"
    for class_name in CLASSES:
        for index in range(4):
            imagegen.write_picture(more, f"{class_name}/new{index}.png", salt="more")
    project.import_path(more)

    summary = project.split(seed=0)

    after = split_of(project)
    assert (summary.assigned, summary.moved) == (12, 0)
    assert {name: after[name] for name in before} == before
    assert None not in after.values()


def test_reassign_may_move_images(workspace: Workspace, tmp_path: Path) -> None:
    project = workspace.create_project("P")
    project.import_path(class_folders_with_near_copies(tmp_path / "source"))
    project.set_split([image.id for image in project.images()], "test")

    summary = project.split(SplitRatios(1, 0, 0), reassign=True)

    assert summary.moved == 34
    assert set(split_of(project).values()) == {"train"}


# Versions


def test_versions_are_numbered_and_listed(workspace, tmp_path) -> None:
    project = labelled_project(workspace, tmp_path)

    first = project.create_version()
    second = project.create_version(Preprocessing(resize=(16, 16)))

    assert [version.number for version in project.versions()] == [1, 2]
    assert project.version() == second
    assert project.version(1) == first
    assert first.id == "p/1"
    assert first.class_names == ["ant", "bee"]
    with pytest.raises(NotFoundError, match="has no version 7; has 1, 2"):
        project.version(7)


def test_version_needs_labelled_images(workspace, tmp_path) -> None:
    project = workspace.create_project("Empty")
    with pytest.raises(NotFoundError, match="no dataset version yet"):
        project.version()
    project.import_path(imagegen.unlabelled(tmp_path / "loose").path)

    with pytest.raises(ValidationError, match="has no labelled images"):
        project.create_version()


def test_version_splits_labelled_images_that_have_none(
    workspace: Workspace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = workspace.create_project("P")
    project.import_path(imagegen.class_folders(tmp_path / "source").path)

    with caplog.at_level(logging.WARNING, logger="pigeonhole"):
        version = project.create_version()

    assert "have no split" in caplog.text
    labelled = [image for image in project.images() if image.labels]
    assert all(image.split is not None for image in labelled)
    assert len(version.items()) == len(labelled) == 8


def test_same_inputs_and_seed_give_the_same_manifest_hash(
    tmp_path: Path, workspace: Workspace
) -> None:
    recipe = Preprocessing(resize=(24, 24))
    augmentation = Augmentation(flip_horizontal=True, brightness=0.3, multiplier=2)
    project = labelled_project(workspace, tmp_path)
    with Workspace.init(tmp_path / "elsewhere") as other:
        elsewhere = other.create_project("Elsewhere")
        elsewhere.import_path(tmp_path / "source")
        copied = elsewhere.create_version(recipe, augmentation, seed=4)

    first = project.create_version(recipe, augmentation, seed=4)
    again = project.create_version(recipe, augmentation, seed=4)
    reseeded = project.create_version(recipe, augmentation, seed=5)
    resized = project.create_version(
        Preprocessing(resize=(20, 20)), augmentation, seed=4
    )

    assert first.manifest_hash == again.manifest_hash == copied.manifest_hash
    assert first.number != again.number
    assert reseeded.manifest_hash != first.manifest_hash
    assert resized.manifest_hash != first.manifest_hash
    seeded_items = {item.sha256 for item in reseeded.items() if item.copy}
    assert seeded_items.isdisjoint(item.sha256 for item in first.items() if item.copy)


def test_augmentation_only_on_train_with_multiplier_copies(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = labelled_project(workspace, tmp_path)
    augmentation = Augmentation(flip_horizontal=True, brightness=0.4, multiplier=3)

    version = project.create_version(augmentation=augmentation, seed=1)

    files, sources = version.counts["files"], version.counts["images"]
    assert sources == {"train": 8, "valid": 4, "test": 2}
    assert files == {"train": 24, "valid": 4, "test": 2}
    assert {item.copy for item in version.items("train")} == {0, 1, 2}
    for split in ("valid", "test"):
        assert {item.copy for item in version.items(split)} == {0}
    by_source: dict[str, set[str]] = {}
    for item in version.items("train"):
        by_source.setdefault(item.source, set()).add(item.sha256)
    assert all(len(outputs) == 3 for outputs in by_source.values())
    assert version.counts["classes"]["ant"] == {"train": 12, "valid": 2, "test": 1}
    assert len({item.name for item in version.items()}) == len(version.items())


def test_preprocessing_is_applied_to_every_item(workspace, tmp_path) -> None:
    project = labelled_project(workspace, tmp_path)
    recipe = Preprocessing(resize=(24, 16), grayscale=True)

    version = project.create_version(recipe)

    assert version.preprocessing == recipe
    for item in version.items():
        pixels = np.asarray(version.load(item), dtype=np.int16)
        assert pixels.shape == (16, 24, 3)
        assert np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 3


@pytest.mark.parametrize(
    ("auto_orient", "size"), [(True, (32, 48)), (False, (48, 32))], ids=str
)
def test_auto_orient_decides_whether_exif_turns_the_pixels(
    workspace: Workspace, auto_orient: bool, size: tuple[int, int]
) -> None:
    project = workspace.create_project("Turned", classes=["card"])
    project.add_image(imagegen.exif_rotated_jpeg(6), labels=["card"], split="train")

    version = project.create_version(Preprocessing(auto_orient=auto_orient))

    (item,) = version.items()
    assert version.load(item).size == size


def test_version_items_keep_labels_and_splits(workspace, tmp_path) -> None:
    project = labelled_project(workspace, tmp_path)

    version = project.create_version()

    expected = {(image.sha256, image.labels, image.split) for image in project.images()}
    found = {(item.source, item.labels, item.split) for item in version.items()}
    assert found == expected
    assert version.manifest()["recipe"]["class_names"] == ["ant", "bee"]


# Export and re-import


def _exported(project: Project) -> dict[str, tuple[tuple[str, ...], str]]:
    return {
        PurePosixPath(image.filename).name: (
            image.labels,
            image.split.value if image.split else "",
        )
        for image in project.images()
    }


def _expected(version: DatasetVersion) -> dict[str, tuple[tuple[str, ...], str]]:
    return {
        item.name: (tuple(sorted(item.labels)), item.split.value)
        for item in version.items()
    }


@pytest.mark.parametrize(
    ("format", "layout"),
    [("folders", "split-class-folders"), ("multilabel-csv", "roboflow-multilabel")],
    ids=["folders", "multilabel-csv"],
)
def test_export_then_import_gives_the_same_labels_and_splits(
    workspace: Workspace, tmp_path: Path, format: str, layout: str
) -> None:
    project = labelled_project(workspace, tmp_path)
    version = project.create_version(Preprocessing(resize=(20, 20)))

    folder = version.export(tmp_path / "export", format=format)
    again = workspace.create_project("Again")
    report = again.import_path(folder)

    assert report.layout == layout
    assert (report.added, report.errors) == (len(version.items()), [])
    assert sorted(again.class_names) == sorted(version.class_names)
    assert _exported(again) == _expected(version)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == version.manifest()


def test_multi_label_version_round_trips_as_csv(workspace, tmp_path) -> None:
    dataset = imagegen.roboflow_multilabel(tmp_path / "source")
    project = workspace.create_project("Tags", type="multi-label")
    project.import_path(dataset.path)
    version = project.create_version()

    folder = version.export(tmp_path / "export", format="multilabel-csv")
    again = workspace.create_project("Again", type="multi-label")
    again.import_path(folder)

    assert again.class_names == dataset.class_names
    assert _exported(again) == _expected(version)
    assert len(version.items()) == len(dataset.labels) - 1  # one has no label


def test_multi_label_version_cannot_export_as_folders(workspace, tmp_path) -> None:
    dataset = imagegen.roboflow_multilabel(tmp_path / "source")
    project = workspace.create_project("Tags", type="multi-label")
    project.import_path(dataset.path)
    version = project.create_version()

    with pytest.raises(ValidationError, match="use format='multilabel-csv'"):
        version.export(tmp_path / "export", format="folders")
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize(
    ("format", "prepare", "message"),
    [
        ("yolo", lambda folder: None, "export format 'yolo' is not one of"),
        ("folders", lambda folder: imagegen.write(folder / "x", b""), "not empty"),
    ],
    ids=["unknown-format", "non-empty-folder"],
)
def test_bad_exports_are_refused(
    workspace: Workspace, tmp_path: Path, format: str, prepare, message: str
) -> None:
    version = labelled_project(workspace, tmp_path).create_version()
    folder = tmp_path / "export"
    prepare(folder)

    with pytest.raises(ValidationError, match=message):
        version.export(folder, format=format)


@pytest.mark.parametrize(
    "label", ["../../escaped", ".", "a\\b"], ids=["parent", "dot", "backslash"]
)
def test_class_names_that_are_not_folder_names_cannot_export_as_folders(
    workspace: Workspace, tmp_path: Path, label: str
) -> None:
    project = workspace.create_project("P")
    project.add_image(imagegen.png("odd"), labels=[label], split="train")
    version = project.create_version()
    folder = tmp_path / "out" / "export"

    with pytest.raises(ValidationError, match="cannot be a folder name"):
        version.export(folder, format="folders")
    assert list(tmp_path.rglob("*.jpg")) == []

    version.export(folder, format="multilabel-csv")
    again = workspace.create_project("Again")
    again.import_path(folder)
    assert [image.labels for image in again.images()] == [(label,)]

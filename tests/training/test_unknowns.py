"""Unknown images against a model's known test images, through the served path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from drawn import drawn_project
from PIL import Image
from skimage import data as photos

from pigeonhole.cli.main import cli
from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.unknowns import evaluate_unknowns
from pigeonhole.project import Project
from pigeonhole.training.runs import train
from pigeonhole.workspace import Workspace

#: Real photos from scikit-image: nothing like the drawn red, green and blue cards.
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "immunohistochemistry",
)


@pytest.fixture(scope="module")
def cards(shared_workspace: Workspace) -> Project:
    """A drawn project with model 1 trained in fast mode."""
    project = drawn_project(shared_workspace, "cards")
    train(project)
    return project


@pytest.fixture(scope="module")
def unknown_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The photos as JPEGs, a few crops of each, and one corrupt file."""
    folder = tmp_path_factory.mktemp("unknowns")
    for name in PHOTOS:
        image = Image.fromarray(np.asarray(getattr(photos, name)())).convert("RGB")
        width, height = image.size
        for index, box in enumerate(
            [(0, 0, width, height), (0, 0, width // 2, height // 2)]
        ):
            image.crop(box).save(folder / f"{name}-{index}.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    return folder


@pytest.mark.slow
def test_photos_are_told_apart_from_the_drawn_classes(
    cards: Project, unknown_folder: Path
) -> None:
    paths = sorted(unknown_folder.iterdir())

    found = evaluate_unknowns(cards, 1, paths)

    assert (found.model_id, found.version) == ("cards/1", 1)
    assert found.known == 15 and found.unknown == 2 * len(PHOTOS)
    assert [Path(name).name for name, _ in found.failed] == ["broken.jpg"]
    # The embedding-distance score separates real photos from the cards almost
    # perfectly; the model turns most of them away and few of its own images.
    assert found.auroc["ood_score"] > 0.9
    assert 0.0 <= found.auroc["max_softmax"] <= 1.0
    assert found.unknown_rejected > 0.5
    assert found.known_rejected < found.unknown_rejected


@pytest.mark.slow
def test_no_readable_unknown_is_an_error(cards: Project, tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"nothing")

    with pytest.raises(ValidationError, match="no unknown image could be predicted"):
        evaluate_unknowns(cards, 1, [tmp_path / "broken.jpg"])


@pytest.mark.slow
def test_cli_evaluates_unknown_folders_and_projects(
    cards: Project, unknown_folder: Path, shared_workspace: Workspace
) -> None:
    other = shared_workspace.create_project("Photos", classes=["photo"])
    other.import_path(unknown_folder)
    base = ["evaluate", "cards", "1", "-w", str(shared_workspace.root)]

    text = CliRunner().invoke(cli, [*base, "--unknowns", str(unknown_folder)])
    as_json = CliRunner().invoke(cli, [*base, "--unknown-project", "photos", "--json"])

    assert text.exit_code == 0, text.output
    assert f"unknowns: {2 * len(PHOTOS)} images against 15 known" in text.output
    assert "AUROC ood_score" in text.output
    assert as_json.exit_code == 0, as_json.output
    unknowns = json.loads(as_json.stdout)["unknowns"]
    assert unknowns["unknown"] == 2 * len(PHOTOS)
    assert unknowns["failed"] == []

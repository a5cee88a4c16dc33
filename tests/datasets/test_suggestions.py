"""Suggested labels: recorded, listed, accepted, and cleared by a person's labels."""

from __future__ import annotations

import pytest

from imagegen import png
from pigeonhole.datasets.suggestions import (
    accept_suggestions,
    suggest,
    suggestions_of,
)
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.project import Project
from pigeonhole.workspace import Workspace


@pytest.fixture
def bananas(workspace: Workspace) -> Project:
    project = workspace.create_project("Bananas", classes=["green", "ripe"])
    for index in range(4):
        project.add_image(png(f"banana {index}"), filename=f"b{index}.png")
    return project


def ids(project: Project) -> list[int]:
    return [record.id for record in project.images()]


def test_suggested_images_are_listed_and_counted(bananas: Project) -> None:
    first, second, *_ = ids(bananas)
    suggest(bananas, first, ["ripe"], confidence=0.9, model_id="bananas/1")
    suggest(bananas, second, [], confidence=0.2, model_id="bananas/1")

    listed = [record.id for record in bananas.images(suggested=True)]
    found = suggestions_of(bananas)

    assert listed == [first, second]
    assert bananas.count_images(suggested=True) == 2
    assert found[first].labels == ("ripe",) and found[first].confidence == 0.9
    assert found[second].labels == ()
    # A suggestion is not a label: the images stay unlabelled.
    assert bananas.count_images(unlabelled=True) == 4


def test_a_new_suggestion_replaces_the_old(bananas: Project) -> None:
    image_id = ids(bananas)[0]
    suggest(bananas, image_id, ["green"], confidence=0.6, model_id="bananas/1")
    suggest(bananas, image_id, ["ripe"], confidence=0.8, model_id="bananas/2")

    found = suggestions_of(bananas)

    assert list(found) == [image_id]
    assert (found[image_id].labels, found[image_id].model_id) == (
        ("ripe",),
        "bananas/2",
    )


def test_accepting_labels_the_images_and_clears_them(bananas: Project) -> None:
    first, second, third, _ = ids(bananas)
    suggest(bananas, first, ["ripe"], confidence=0.9, model_id="bananas/1")
    suggest(bananas, second, ["green"], confidence=0.7, model_id="bananas/1")

    accepted = accept_suggestions(bananas, [first, second, third])

    assert accepted == 2
    assert bananas.image(first).labels == ("ripe",)
    assert bananas.image(second).labels == ("green",)
    assert bananas.image(third).labels == ()
    assert suggestions_of(bananas) == {}


def test_labelling_clears_a_suggestion_and_unlabelling_keeps_it(
    bananas: Project,
) -> None:
    first, second, *_ = ids(bananas)
    for image_id in (first, second):
        suggest(bananas, image_id, ["ripe"], confidence=0.9, model_id="bananas/1")

    bananas.set_labels([first], ["green"])
    bananas.set_labels([second], [])

    assert list(suggestions_of(bananas)) == [second]
    assert bananas.image(first).labels == ("green",)


def test_adding_a_label_clears_a_multi_label_suggestion(
    workspace: Workspace,
) -> None:
    project = workspace.create_project(
        "Clothes", type="multi-label", classes=["red", "dress"]
    )
    image_id = project.add_image(png("dress")).id
    suggest(project, image_id, ["red", "dress"], confidence=0.8, model_id="clothes/1")

    project.add_label([image_id], "red")

    assert suggestions_of(project) == {}


def test_suggestions_stay_in_their_project(
    workspace: Workspace, bananas: Project
) -> None:
    other = workspace.create_project("Apples", classes=["red"])
    apple = other.add_image(png("apple")).id
    suggest(other, apple, ["red"], confidence=0.9, model_id="apples/1")

    assert suggestions_of(bananas) == {}
    assert bananas.count_images(suggested=True) == 0
    with pytest.raises(NotFoundError, match=rf"'bananas' has no image\(s\) {apple}"):
        accept_suggestions(bananas, [apple])


@pytest.mark.parametrize("confidence", [-0.1, 1.5], ids=["negative", "above-one"])
def test_a_confidence_outside_0_to_1_is_refused(
    bananas: Project, confidence: float
) -> None:
    with pytest.raises(ValidationError, match="must be from 0 to 1"):
        suggest(
            bananas, ids(bananas)[0], ["ripe"], confidence=confidence, model_id="b/1"
        )

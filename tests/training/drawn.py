"""Drawn projects for the training tests: red, green and blue pictures."""

from __future__ import annotations

from PIL import Image

from modelgen import CLASS_NAMES, encode, picture
from pigeonhole.project import Project
from pigeonhole.workspace import Workspace

#: Pictures per class in each split of a drawn project.
PER_CLASS = {"train": 10, "valid": 5, "test": 5}


def small_picture(seed: int, class_id: int) -> bytes:
    return encode(picture(seed, class_id, size=(96, 80)), "PNG")


def drawn_project(workspace: Workspace, name: str, seed: int = 0) -> Project:
    """A single-label project of red, green and blue pictures with a version."""
    project = workspace.create_project(name, classes=CLASS_NAMES)
    add_pictures(project, seed)
    project.create_version()
    return project


def add_pictures(
    project: Project, seed: int, per_class: dict[str, int] = PER_CLASS
) -> None:
    index = seed * 1000
    for split, count in per_class.items():
        for class_id, class_name in enumerate(CLASS_NAMES):
            for _ in range(count):
                index += 1
                project.add_image(
                    small_picture(index, class_id), labels=[class_name], split=split
                )


def two_colour_picture(seed: int, first: int, second: int) -> bytes:
    """The left half of one class's picture beside the right half of another's."""
    left = picture(seed, first, size=(96, 80))
    right = picture(seed + 500, second, size=(96, 80))
    image = Image.new("RGB", (96, 80))
    image.paste(left.crop((0, 0, 48, 80)), (0, 0))
    image.paste(right.crop((48, 0, 96, 80)), (48, 0))
    return encode(image, "PNG")

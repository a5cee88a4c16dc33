"""Pigeonhole: self-hosted image classification, from photos to a served model.

Example:
    >>> import pigeonhole
    >>> workspace = pigeonhole.Workspace.init("my-workspace")  # doctest: +SKIP
    >>> project = workspace.create_project(
    ...     "Bananas", classes=["green", "ripe", "overripe"]
    ... )  # doctest: +SKIP
    >>> report = project.import_path("photos/")  # doctest: +SKIP
    >>> project.split(pigeonhole.SplitRatios(0.7, 0.2, 0.1), seed=0)  # doctest: +SKIP
    >>> version = project.create_version(
    ...     pigeonhole.Preprocessing(resize=(224, 224)),
    ...     pigeonhole.Augmentation(flip_horizontal=True, multiplier=3),
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.datasets.splitting import SplitRatios
from pigeonhole.domain import ProjectType, Split
from pigeonhole.errors import PigeonholeError
from pigeonhole.preprocessing import Preprocessing, ResizeMode
from pigeonhole.project import ImageRecord, Project
from pigeonhole.workspace import Workspace

__all__ = [
    "Augmentation",
    "ImageRecord",
    "PigeonholeError",
    "Preprocessing",
    "Project",
    "ProjectType",
    "ResizeMode",
    "Split",
    "SplitRatios",
    "Workspace",
    "__version__",
]

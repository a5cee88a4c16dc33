"""Pigeonhole: self-hosted image classification, from a folder of photos to a served model.

Example:
    >>> import pigeonhole
    >>> workspace = pigeonhole.Workspace.init("my-workspace")  # doctest: +SKIP
    >>> project = workspace.create_project("Bananas", classes=["green", "ripe"])  # doctest: +SKIP
    >>> report = project.import_path("photos/")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

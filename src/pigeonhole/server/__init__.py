"""The HTTP server: a thin FastAPI face over the Python API.

Example:
    >>> from pigeonhole import Workspace
    >>> from pigeonhole.server import ServerSettings, create_app
    >>> workspace = Workspace.open("my-workspace")  # doctest: +SKIP
    >>> app = create_app(workspace, settings=ServerSettings())  # doctest: +SKIP
"""

from __future__ import annotations

from pigeonhole.server.app import create_app
from pigeonhole.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

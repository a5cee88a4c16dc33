"""FastAPI dependencies every router shares: the workspace, the project, the key.

Example:
    >>> router = APIRouter(tags=["things"])  # doctest: +SKIP
    >>> @router.get("/projects/{project}/things", dependencies=[READ])
    ... def list_things(project: ProjectDep) -> list[str]: ...  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from pigeonhole.project import Project
from pigeonhole.server.auth import require_key
from pigeonhole.server.settings import ServerSettings
from pigeonhole.workspace import Workspace

#: Route dependency: any valid key, read-only ones included.
READ = Depends(require_key(write=False))
#: Route dependency: a valid read-write key.
WRITE = Depends(require_key(write=True))


def get_workspace(request: Request) -> Workspace:
    """The workspace the app serves."""
    workspace: Workspace = request.app.state.workspace
    return workspace


def get_settings(request: Request) -> ServerSettings:
    """The settings the app was created with."""
    settings: ServerSettings = request.app.state.settings
    return settings


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]


def get_project(
    project: Annotated[str, Path(description="The project's slug, name or id.")],
    workspace: WorkspaceDep,
) -> Project:
    """The project named in the path; 404 when there is none."""
    return workspace.project(project)


ProjectDep = Annotated[Project, Depends(get_project)]

"""Dataset versions: create from a recipe, list, show, and read the manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.server.deps import READ, WRITE, ProjectDep
from pigeonhole.server.schemas import VersionCreate, VersionOut, error_responses

router = APIRouter(tags=["versions"], responses=error_responses(401, 404, 422))


@router.post(
    "/projects/{project}/versions",
    dependencies=[WRITE],
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 403),
)
def create_version(project: ProjectDep, body: VersionCreate) -> VersionOut:
    """Freezes images, labels, splits and the recipe as the next version.

    Renders every labelled image in the request; large projects take a while.
    """
    version = project.create_version(
        Preprocessing.from_dict(body.preprocessing),
        Augmentation.from_dict(body.augmentation),
        seed=body.seed,
    )
    return VersionOut.of(version)


@router.get("/projects/{project}/versions", dependencies=[READ])
def list_versions(project: ProjectDep) -> list[VersionOut]:
    """Every version, oldest first."""
    return [VersionOut.of(version) for version in project.versions()]


@router.get("/projects/{project}/versions/{number}", dependencies=[READ])
def get_version(project: ProjectDep, number: int) -> VersionOut:
    """One version: its recipe and counts per split and class."""
    return VersionOut.of(project.version(number))


@router.get("/projects/{project}/versions/{number}/manifest", dependencies=[READ])
def get_manifest(project: ProjectDep, number: int) -> dict[str, Any]:
    """The manifest: recipe, counts and every file with its source, labels, split."""
    return project.version(number).manifest()

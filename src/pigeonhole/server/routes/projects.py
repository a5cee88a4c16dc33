"""Projects and their classes."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from pigeonhole.server.deps import READ, WRITE, ProjectDep, WorkspaceDep
from pigeonhole.server.schemas import (
    ClassesAdd,
    ClassesAdded,
    ClassOut,
    ProjectCreate,
    ProjectOut,
    error_responses,
)

router = APIRouter(tags=["projects"], responses=error_responses(401, 403, 404, 422))


@router.get("/projects", dependencies=[READ])
def list_projects(workspace: WorkspaceDep) -> list[ProjectOut]:
    """Every project, oldest first, with its classes and counts."""
    return [ProjectOut.of(project) for project in workspace.projects()]


@router.post(
    "/projects",
    dependencies=[WRITE],
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409),
)
def create_project(body: ProjectCreate, workspace: WorkspaceDep) -> ProjectOut:
    """Creates a project; its type is fixed for its life."""
    project = workspace.create_project(
        body.name, type=body.type, classes=body.classes, slug=body.slug
    )
    return ProjectOut.of(project)


@router.get("/projects/{project}", dependencies=[READ])
def get_project(project: ProjectDep) -> ProjectOut:
    """One project by slug, name or id."""
    return ProjectOut.of(project)


@router.delete(
    "/projects/{project}",
    dependencies=[WRITE],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def delete_project(project: ProjectDep, workspace: WorkspaceDep) -> Response:
    """Deletes a project with its images, labels and versions."""
    workspace.delete_project(project.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/projects/{project}/classes", dependencies=[READ])
def list_classes(project: ProjectDep) -> list[ClassOut]:
    """The classes in class-id order, with how many images have each."""
    return [
        ClassOut(class_id=class_id, name=name, images=project.count_images(label=name))
        for class_id, name in enumerate(project.class_names)
    ]


@router.post(
    "/projects/{project}/classes",
    dependencies=[WRITE],
    responses=error_responses(400),
)
def add_classes(body: ClassesAdd, project: ProjectDep) -> ClassesAdded:
    """Appends classes; those already there are left as they are."""
    added = project.add_classes(body.names)
    return ClassesAdded(added=added, classes=project.class_names)

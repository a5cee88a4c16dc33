"""Labels: set, add or remove one image's labels, or change many images at once."""

from __future__ import annotations

from fastapi import APIRouter

from pigeonhole.server.deps import WRITE, ProjectDep
from pigeonhole.server.schemas import (
    Changed,
    ImageOut,
    LabelAction,
    LabelAdd,
    LabelBatch,
    LabelsSet,
    error_responses,
)

router = APIRouter(tags=["labels"], responses=error_responses(400, 401, 403, 404, 422))


@router.put("/projects/{project}/images/{image_id}/labels", dependencies=[WRITE])
def set_labels(project: ProjectDep, image_id: int, body: LabelsSet) -> ImageOut:
    """Replaces the image's labels; unknown class names are added to the project.

    Any labels but none clear the image's suggested labels.
    """
    project.set_labels([image_id], body.labels)
    return ImageOut.read(project, image_id)


@router.post("/projects/{project}/images/{image_id}/labels", dependencies=[WRITE])
def add_label(project: ProjectDep, image_id: int, body: LabelAdd) -> ImageOut:
    """Adds one label (multi-label projects; single-label ones replace with PUT);
    clears the image's suggested labels."""
    project.add_label([image_id], body.label)
    return ImageOut.read(project, image_id)


@router.delete(
    "/projects/{project}/images/{image_id}/labels/{label}", dependencies=[WRITE]
)
def remove_label(project: ProjectDep, image_id: int, label: str) -> ImageOut:
    """Removes one label from the image, if it has it."""
    project.remove_label([image_id], label)
    return ImageOut.read(project, image_id)


@router.post("/projects/{project}/labels", dependencies=[WRITE])
def label_batch(project: ProjectDep, body: LabelBatch) -> Changed:
    """The same change for many images: ``set`` their labels, ``add`` or ``remove``.

    ``changed`` counts images for ``set``, and image-label pairs for ``add`` and
    ``remove``. Every listed image must belong to the project, or nothing changes.
    """
    if body.action is LabelAction.SET:
        return Changed(changed=project.set_labels(body.image_ids, body.labels))
    change = (
        project.add_label if body.action is LabelAction.ADD else project.remove_label
    )
    return Changed(changed=sum(change(body.image_ids, label) for label in body.labels))

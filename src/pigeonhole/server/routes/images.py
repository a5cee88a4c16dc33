"""Images: listing with filters, one image, its file and its thumbnail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from pigeonhole.server import imagefiles
from pigeonhole.server.deps import READ, ProjectDep
from pigeonhole.server.schemas import ImageOut, ImagePage, error_responses

router = APIRouter(tags=["images"], responses=error_responses(401, 404, 422))

_IMAGE_CONTENT = {"content": {"image/*": {}}, "description": "The image bytes."}


@router.get("/projects/{project}/images", dependencies=[READ])
def list_images(
    project: ProjectDep,
    split: Annotated[str | None, Query(description="train, valid or test")] = None,
    label: Annotated[str | None, Query(description="Only images of this class")] = None,
    unlabelled: Annotated[bool, Query(description="Only images with no label")] = False,
    suggested: Annotated[
        bool, Query(description="Only images carrying a suggested label")
    ] = False,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ImagePage:
    """A page of images in id order, and how many match the filters in all."""
    records = project.images(
        split=split,
        label=label,
        unlabelled=unlabelled,
        suggested=suggested,
        offset=offset,
        limit=limit,
    )
    total = project.count_images(
        split=split, label=label, unlabelled=unlabelled, suggested=suggested
    )
    images = ImageOut.many(project, records)
    return ImagePage(total=total, offset=offset, limit=limit, images=images)


@router.get("/projects/{project}/images/{image_id}", dependencies=[READ])
def get_image(project: ProjectDep, image_id: int) -> ImageOut:
    """One image with its size, split, labels and suggested labels."""
    return ImageOut.read(project, image_id)


@router.get(
    "/projects/{project}/images/{image_id}/file",
    dependencies=[READ],
    response_class=FileResponse,
    responses={200: _IMAGE_CONTENT},
)
def get_image_file(project: ProjectDep, image_id: int) -> FileResponse:
    """The image's original bytes, as they were uploaded or imported."""
    path, media_type, filename = imagefiles.original_file(project, image_id)
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        content_disposition_type="inline",
    )


@router.get(
    "/projects/{project}/images/{image_id}/thumbnail",
    dependencies=[READ],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A JPEG."}},
)
def get_thumbnail(
    project: ProjectDep,
    image_id: int,
    size: Annotated[
        int,
        Query(
            ge=imagefiles.MIN_SIZE,
            le=imagefiles.MAX_SIZE,
            description="Longest side in pixels; smaller images are not enlarged.",
        ),
    ] = 256,
) -> Response:
    """The image upright and shrunk to fit ``size`` pixels, as JPEG; made once."""
    made = imagefiles.thumbnail(project, image_id, size)
    headers = {"ETag": f'"{made.sha256}"', "Cache-Control": "private, max-age=3600"}
    return Response(made.data, media_type="image/jpeg", headers=headers)

"""Uploads: image files with their labels and split, or a ``.zip`` dataset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from pigeonhole.server.deps import WRITE, ProjectDep, SettingsDep
from pigeonhole.server.schemas import ImportReportOut, error_responses
from pigeonhole.server.uploads import describe_uploads, import_archive, import_uploads

router = APIRouter(
    tags=["uploads"], responses=error_responses(400, 401, 403, 404, 413, 422)
)


@router.post("/projects/{project}/images", dependencies=[WRITE])
def upload_images(
    project: ProjectDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="One or more image files.")],
    labels: Annotated[
        list[str] | None,
        Form(
            description="Class names of each file, separated by `;`: one field per "
            "file in file order, or one for all; empty for unlabelled."
        ),
    ] = None,
    split: Annotated[
        list[str] | None,
        Form(description="`train`, `valid` or `test`: one per file, or one for all."),
    ] = None,
) -> ImportReportOut:
    """Adds images; each file is reported as added, duplicate or refused with why.

    Answers 400 when every file was refused; a refused file never stops the others.
    """
    uploads = describe_uploads(
        [(file.filename, file.file) for file in files], labels, split
    )
    report = import_uploads(project, uploads, settings.max_upload_bytes)
    return ImportReportOut.of(report)


@router.post("/projects/{project}/imports", dependencies=[WRITE])
def upload_archive(
    project: ProjectDep,
    file: Annotated[
        UploadFile,
        File(description="A .zip of class folders, a Roboflow export or a CSV."),
    ],
    resplit: Annotated[
        bool, Form(description="Ignore the splits the archive carries.")
    ] = False,
) -> ImportReportOut:
    """Imports a ``.zip`` dataset; members that would escape its folder are refused."""
    report = import_archive(project, file.filename, file.file, resplit=resplit)
    return ImportReportOut.of(report)

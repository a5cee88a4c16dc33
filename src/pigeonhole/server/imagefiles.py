"""Serving image files: the stored original and cached thumbnails.

A thumbnail is made once per image content and size: the first request decodes the
image through the safe decode path, shrinks it and stores the JPEG in the blob store;
the ``thumbnails`` table maps (image sha256, size) to that blob for every later
request, from any project holding the same bytes.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError

from pigeonhole.errors import NotFoundError
from pigeonhole.project import Project
from pigeonhole.storage.database import ThumbnailRow

logger = logging.getLogger(__name__)

MIN_SIZE = 16
MAX_SIZE = 1024
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail's JPEG bytes and their sha256, which serves as its ETag."""

    data: bytes
    sha256: str


def original_file(project: Project, image_id: int) -> tuple[Path, str, str]:
    """Where the image's stored bytes are, its media type and its file name.

    Raises:
        NotFoundError: The project has no such image, or its blob is missing.
    """
    record = project.image(image_id)
    blobs = project.workspace.blobs
    if not blobs.has(record.sha256):
        raise NotFoundError(
            f"the file of image {image_id} ({record.sha256[:12]}) is missing from "
            "the blob store; the workspace was copied without its blobs folder"
        )
    path = blobs.path(record.sha256)
    return path, media_type(path), record.filename


def media_type(path: Path) -> str:
    """The MIME type of an image file, read from its header."""
    try:
        with Image.open(path) as image:
            return Image.MIME.get(image.format or "", "application/octet-stream")
    except (UnidentifiedImageError, OSError):
        return "application/octet-stream"


def thumbnail(project: Project, image_id: int, size: int) -> Thumbnail:
    """The image shrunk to fit ``size`` x ``size`` pixels, made at most once.

    Raises:
        NotFoundError: The project has no such image.
        ImageError: The stored image can no longer be decoded.
    """
    record = project.image(image_id)
    workspace = project.workspace
    with workspace.sessions() as session:
        row = session.get(ThumbnailRow, (record.sha256, size))
        cached = row.blob_sha256 if row is not None else None
    if cached is not None and workspace.blobs.has(cached):
        return Thumbnail(workspace.blobs.get(cached), cached)
    data = render_thumbnail(project.load_image(image_id), size)
    digest = workspace.blobs.put(data)
    _remember(project, record.sha256, size, digest)
    return Thumbnail(data, digest)


def render_thumbnail(image: Image.Image, size: int) -> bytes:
    """JPEG bytes of ``image`` shrunk (never enlarged) to fit a square of ``size``."""
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _remember(project: Project, sha256: str, size: int, digest: str) -> None:
    try:
        with project.workspace.sessions.begin() as session:
            session.merge(ThumbnailRow(sha256=sha256, size=size, blob_sha256=digest))
    except IntegrityError:
        # Another request made the same thumbnail first; its row is as good.
        logger.debug("thumbnail %s/%d was cached concurrently", sha256[:12], size)

"""Safe extraction of ``.zip`` imports.

Every member is checked before anything is written: absolute paths, ``..`` parts,
drive letters, symbolic links and device entries are refused, and so is an archive
whose members add up to more than :data:`MAX_UNPACKED_BYTES` (a zip bomb).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from pigeonhole.errors import ImportFormatError, UnsafeArchiveError

MAX_UNPACKED_BYTES = 64 * 1024**3


def extract_zip(archive: Path, destination: Path) -> Path:
    """Extracts ``archive`` into ``destination`` after checking every member.

    Returns:
        The folder to import: ``destination``, or its single top-level folder when
        the archive wraps everything in one.

    Raises:
        UnsafeArchiveError: A member would land outside ``destination``, is a link,
            or the archive unpacks to more than :data:`MAX_UNPACKED_BYTES`.
        ImportFormatError: The file is not a readable zip.
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            _check_members(archive, members)
            destination.mkdir(parents=True, exist_ok=True)
            for member in members:
                _extract_member(bundle, member, destination)
    except zipfile.BadZipFile as error:
        raise ImportFormatError(
            f"{archive}: not a readable zip file ({error})"
        ) from None
    return _single_top_folder(destination)


def _check_members(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    total = 0
    for member in members:
        name = member.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} would be written outside the import "
                "folder; refusing the whole archive"
            )
        # Many writers (Python's writestr among them) set permission bits with no
        # file type; only a type other than file or folder is refused.
        kind = stat.S_IFMT(member.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} is a link or special file; only regular "
                "files and folders are accepted"
            )
        total += member.file_size
    if total > MAX_UNPACKED_BYTES:
        raise UnsafeArchiveError(
            f"{archive}: unpacks to {total:,} bytes, over the limit of "
            f"{MAX_UNPACKED_BYTES:,}"
        )


def _extract_member(
    bundle: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path
) -> None:
    target = destination.joinpath(
        *PurePosixPath(member.filename.replace("\\", "/")).parts
    )
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with bundle.open(member) as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink, length=1024 * 1024)


def _single_top_folder(destination: Path) -> Path:
    """Unwraps one top-level folder when it is a dataset root, not a class folder.

    ``bundle/train/cats/1.jpg`` unwraps to ``bundle``; ``cats/1.jpg`` stays as it is,
    so the single folder is read as the class ``cats``.
    """
    entries = [
        entry
        for entry in destination.iterdir()
        if not entry.name.startswith(".") and entry.name != "__MACOSX"
    ]
    if len(entries) != 1 or not entries[0].is_dir():
        return destination
    inside = list(entries[0].iterdir())
    looks_like_root = any(
        child.is_dir() or child.suffix.lower() == ".csv" for child in inside
    )
    return entries[0] if looks_like_root else destination

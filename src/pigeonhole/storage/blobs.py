"""Content-addressed file store: every blob is saved once, under its sha256.

Blobs live at ``<root>/<first two hex digits>/<sha256>``. A write goes to a temporary
file in the same folder and is renamed into place, so a killed process never leaves a
half-written blob under a real name.

Example:
    >>> store = BlobStore(tmp_path / "blobs")  # doctest: +SKIP
    >>> digest = store.put(b"...")  # doctest: +SKIP
    >>> store.get(digest) == b"..."  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pigeonhole.errors import NotFoundError, ValidationError


class BlobStore:
    """Files keyed by the sha256 of their bytes.

    Args:
        root: Folder holding the blobs; created when missing.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        _check_digest(sha256)
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).is_file()

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Stores ``data`` unless already present; returns its sha256.

        Args:
            data: The bytes.
            sha256: Their digest when the caller has it already (not re-checked).
        """
        digest = sha256 or hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file():
            return digest
        target.parent.mkdir(exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        """The blob's bytes.

        Raises:
            NotFoundError: No blob has that digest.
        """
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"blob {sha256} is missing from {self.root}; the workspace was copied "
                "without its blobs folder or a file was deleted by hand"
            ) from None


def _check_digest(sha256: str) -> None:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValidationError(f"{sha256!r} is not a lower-case hex sha256 digest")

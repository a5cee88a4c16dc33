from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.storage.blobs import BlobStore


def test_put_stores_once_under_the_digest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    digest = hashlib.sha256(b"pixels").hexdigest()

    assert store.put(b"pixels") == digest
    assert store.put(b"pixels", digest) == digest

    assert store.path(digest) == tmp_path / "blobs" / digest[:2] / digest
    assert store.has(digest)
    assert store.get(digest) == b"pixels"
    assert [
        path.name for path in (tmp_path / "blobs").rglob("*") if path.is_file()
    ] == [digest]


def test_missing_blob_says_what_happened(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = "0" * 64

    assert not store.has(digest)
    with pytest.raises(NotFoundError, match=f"blob {digest} is missing"):
        store.get(digest)


@pytest.mark.parametrize(
    "digest",
    ["abc", "A" * 64, "g" * 64, "../" + "0" * 61],
    ids=["short", "upper-case", "not-hex", "path"],
)
def test_bad_digests_are_refused(tmp_path: Path, digest: str) -> None:
    with pytest.raises(ValidationError, match="not a lower-case hex sha256"):
        BlobStore(tmp_path).path(digest)

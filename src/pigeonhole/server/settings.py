"""Settings of one server process.

Example:
    >>> from pigeonhole.server.settings import ServerSettings
    >>> ServerSettings(port=9000).max_upload_bytes
    20971520
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

from pigeonhole.errors import ValidationError

MIB = 1024 * 1024

#: Default of `ServerSettings.batch_window_ms`.
DEFAULT_BATCH_WINDOW_MS = 5.0

#: Default of `ServerSettings.max_batch_images`: the model graph's own batch size.
DEFAULT_MAX_BATCH_IMAGES = 32


@cache
def _batching_env() -> tuple[float, int]:
    """``PIGEONHOLE_BATCH_WINDOW_MS`` and ``PIGEONHOLE_MAX_BATCH_IMAGES``, read once."""
    window = os.environ.get("PIGEONHOLE_BATCH_WINDOW_MS", "")
    size = os.environ.get("PIGEONHOLE_MAX_BATCH_IMAGES", "")
    try:
        return (
            float(window) if window else DEFAULT_BATCH_WINDOW_MS,
            int(size) if size else DEFAULT_MAX_BATCH_IMAGES,
        )
    except ValueError:
        raise ValidationError(
            f"PIGEONHOLE_BATCH_WINDOW_MS={window!r} must be a number of milliseconds "
            f"and PIGEONHOLE_MAX_BATCH_IMAGES={size!r} a whole number; fix or unset "
            "them"
        ) from None


def _default_window() -> float:
    return _batching_env()[0]


def _default_batch_images() -> int:
    return _batching_env()[1]


@dataclass(frozen=True)
class ServerSettings:
    """How the server listens and what it accepts.

    Attributes:
        host: Interface to bind; ``127.0.0.1`` keeps the server on this machine.
        port: TCP port.
        max_upload_bytes: Largest single image file in an upload.
        max_request_bytes: Largest request body, which also bounds a ``.zip`` import.
        allow_private_urls: Whether routes that fetch an image from a URL may reach
            private and loopback addresses (off: a request cannot make the server
            probe its own network).
        require_keys: Whether every route but ``/health`` and the docs needs an API
            key; turn off only on a trusted network.
        url_timeout_s: Time limit of fetching one image from a URL, in seconds.
        loaded_models: How many models stay loaded in memory at most.
        record_predictions: Whether served predictions go into the prediction log.
        record_images: Whether the log also keeps each predicted image's bytes (in
            the blob store), so it can be sent back to its project later.
        start_worker: Whether the app starts the training worker process.
        batch_window_ms: How long a shared predictor call may wait for concurrent
            requests already on their way, in milliseconds; a lone request never
            waits (`pigeonhole.server.batching`). 0 gives every request its own
            call. Default from ``PIGEONHOLE_BATCH_WINDOW_MS``, else 5.
        max_batch_images: Most images in one shared predictor call. Default from
            ``PIGEONHOLE_MAX_BATCH_IMAGES``, else 32.

    Raises:
        ValidationError: A port outside 0 to 65535, a size limit below 1 byte, a
            negative batch window or a batch size below 1.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 20 * MIB
    max_request_bytes: int = 200 * MIB
    allow_private_urls: bool = False
    require_keys: bool = True
    url_timeout_s: float = 10.0
    loaded_models: int = 8
    record_predictions: bool = True
    record_images: bool = False
    start_worker: bool = True
    batch_window_ms: float = field(default_factory=_default_window)
    max_batch_images: int = field(default_factory=_default_batch_images)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValidationError(f"port={self.port} must be from 0 to 65535")
        if self.url_timeout_s <= 0:
            raise ValidationError(f"url_timeout_s={self.url_timeout_s} must be above 0")
        if not 0 <= self.batch_window_ms <= 1000:
            raise ValidationError(
                f"batch_window_ms={self.batch_window_ms} must be from 0 (off) to 1000"
            )
        names = ("max_upload_bytes", "max_request_bytes", "loaded_models")
        for name in (*names, "max_batch_images"):
            if getattr(self, name) < 1:
                raise ValidationError(
                    f"{name}={getattr(self, name)} must be at least 1"
                )

    @property
    def is_loopback(self) -> bool:
        """Whether :attr:`host` only accepts connections from this machine."""
        return self.host in ("127.0.0.1", "::1", "localhost")

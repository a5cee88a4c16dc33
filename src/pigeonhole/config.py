"""Settings read once from ``PIGEONHOLE_*`` environment variables.

Example:
    >>> from pigeonhole.config import Settings
    >>> Settings.from_env({"PIGEONHOLE_MAX_PIXELS": "1000"}).max_pixels
    1000
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from pigeonhole.errors import ValidationError

DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_NEAR_DUPLICATE_DISTANCE = 4


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    Attributes:
        max_pixels: Images with more pixels than this are refused as decompression
            bombs (``PIGEONHOLE_MAX_PIXELS``).
        near_duplicate_distance: Largest Hamming distance between two 64-bit
            perceptual hashes for the images to count as near-duplicates
            (``PIGEONHOLE_NEAR_DUPLICATE_DISTANCE``).
        database_url: Overrides the workspace's own SQLite file, for example a
            PostgreSQL URL shared by several machines (``PIGEONHOLE_DATABASE_URL``).
        log_level: Level for the CLI's and server's logging
            (``PIGEONHOLE_LOG_LEVEL``).
        workers: Threads used to decode images; 0 means one per free core
            (``PIGEONHOLE_WORKERS``).
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    near_duplicate_distance: int = DEFAULT_NEAR_DUPLICATE_DISTANCE
    database_url: str | None = None
    log_level: str = "WARNING"
    workers: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads settings from ``environ`` (the process environment by default)."""
        env = os.environ if environ is None else environ
        return cls(
            max_pixels=_int(env, "PIGEONHOLE_MAX_PIXELS", DEFAULT_MAX_PIXELS),
            near_duplicate_distance=_int(
                env,
                "PIGEONHOLE_NEAR_DUPLICATE_DISTANCE",
                DEFAULT_NEAR_DUPLICATE_DISTANCE,
            ),
            database_url=env.get("PIGEONHOLE_DATABASE_URL") or None,
            log_level=env.get("PIGEONHOLE_LOG_LEVEL", "WARNING").upper(),
            workers=_int(env, "PIGEONHOLE_WORKERS", 0),
        )

    def worker_count(self) -> int:
        """Decoding threads: the setting, or the cores this process may use."""
        if self.workers > 0:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            f"{name}={raw!r} is not an integer; set it to a whole number or unset it"
        ) from None
    if value < 0:
        raise ValidationError(f"{name}={value} must be 0 or more")
    return value


@cache
def settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings.from_env()

"""How long work reports progress to whoever shows it (CLI bar, web page, database).

Library code calls a :class:`Progress` callback; it never draws anything itself.

Example:
    >>> def show(phase: str, done: int, total: int | None) -> None:
    ...     pass
    >>> report(show, "import", 3, 10)
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives ``(phase, done, total)``; ``total`` is None when unknown."""

    def __call__(self, phase: str, done: int, total: int | None) -> None: ...


def report(progress: Progress | None, phase: str, done: int, total: int | None) -> None:
    """Calls ``progress`` when one was given."""
    if progress is not None:
        progress(phase, done, total)

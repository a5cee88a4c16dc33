"""What every command shares: the workspace option, progress bars, output, errors."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from pigeonhole.config import settings
from pigeonhole.errors import PigeonholeError
from pigeonhole.progress import Progress
from pigeonhole.workspace import Workspace

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_WORKSPACE = "pigeonhole-workspace"

stderr = Console(stderr=True)


def default_workspace() -> str:
    """``$PIGEONHOLE_WORKSPACE``, or ``pigeonhole-workspace`` in the current folder."""
    return os.environ.get("PIGEONHOLE_WORKSPACE", DEFAULT_WORKSPACE)


workspace_option = click.option(
    "--workspace",
    "-w",
    "workspace_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_workspace,
    show_default=f"$PIGEONHOLE_WORKSPACE or ./{DEFAULT_WORKSPACE}",
    help="Workspace folder.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)


def open_workspace(path: Path) -> Workspace:
    """Opens the workspace for a command."""
    return Workspace.open(path)


def friendly_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turns a PigeonholeError into ``Error: message`` and exit status 1."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except PigeonholeError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def configure_logging() -> None:
    """Logging to stderr at ``PIGEONHOLE_LOG_LEVEL``; only where the host set none."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=settings().log_level,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


def print_json(value: Any) -> None:
    """Writes ``value`` as indented JSON to stdout."""
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


@contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A rich progress bar on stderr, fed by the library's progress callback."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=stderr, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                label = description if len(tasks) == 0 else phase
                tasks[phase] = bar.add_task(label, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update

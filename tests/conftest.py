from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeonhole.workspace import Workspace
from postgres import PostgresServer, find_binaries


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace in ``tmp_path / "workspace"``."""
    opened = Workspace.init(tmp_path / "workspace")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for the test session (see ``postgres.py``).

    Skipped, saying why, where PostgreSQL is not installed;
    ``scripts/system-packages.sh`` installs it, and CI runs these tests.
    """
    binaries = find_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL is not installed; run scripts/system-packages.sh to install "
            "Debian's postgresql for the PostgreSQL tests"
        )
    # Not under pytest's own temporary folder: the server may run as another user,
    # who needs to reach it.
    folder = Path(tempfile.mkdtemp(prefix="pigeonhole-pg-"))
    server = PostgresServer(folder, binaries)
    try:
        server.start()
        yield server
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeonhole.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace in ``tmp_path / "workspace"``."""
    opened = Workspace.init(tmp_path / "workspace")
    yield opened
    opened.close()

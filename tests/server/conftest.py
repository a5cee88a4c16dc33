"""Fixtures: a real uvicorn server per test module, clients and projects."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from server_kit import Live, live_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server for the whole test module."""
    with live_server(tmp_path_factory.mktemp("server") / "workspace") as server:
        yield server


@pytest.fixture
def client(live: Live) -> Iterator[httpx.Client]:
    """A client with the read-write key."""
    with live.client() as opened:
        yield opened


@pytest.fixture
def make_project(client: httpx.Client) -> Callable[..., str]:
    """Creates a project with a unique slug; returns the slug."""
    counter = iter(range(1, 10_000))

    def make(
        classes: tuple[str, ...] = ("cat", "dog"), type: str = "single-label"
    ) -> str:
        name = f"project {time.monotonic_ns()} {next(counter)}"
        response = client.post(
            "/projects", json={"name": name, "type": type, "classes": list(classes)}
        )
        assert response.status_code == 201, response.text
        slug: str = response.json()["slug"]
        return slug

    return make

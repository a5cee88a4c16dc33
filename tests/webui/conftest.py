"""Fixtures of the web UI tests: a real server on loopback, and Debian's chromium
driven by Playwright.

The tests are skipped, with the reason, when ``/usr/bin/chromium`` is missing
(``scripts/system-packages.sh`` installs it; Playwright comes with the ``dev``
extra). Playwright never downloads a browser here: it launches the system one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from pigeonhole.server import ServerSettings, create_app
from pigeonhole.server.auth import create_key
from pigeonhole.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking"]

SKIP_REASON = (
    f"{CHROMIUM} is missing; run scripts/system-packages.sh to install Debian's "
    "chromium for the web UI tests"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skips this folder's tests, saying why, on a machine without chromium."""
    if CHROMIUM.exists():
        return
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@dataclass
class Live:
    """A running server, its workspace and a read-write key."""

    url: str
    workspace: Workspace
    key: str

    def client(self) -> httpx.Client:
        """An API client with the key, for setting up and checking state."""
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )


def serve(workspace: Workspace) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Starts uvicorn in a thread on a socket bound first; returns it and its URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    app = create_app(workspace, settings=ServerSettings(port=port))
    config = uvicorn.Config(app, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, args=([listener],), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web UI test server did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server over a new workspace for the whole test module."""
    workspace = Workspace.init(tmp_path_factory.mktemp("webui") / "workspace")
    key, _ = create_key(workspace, "web UI tests")
    server, thread, url = serve(workspace)
    try:
        yield Live(url, workspace, key)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        workspace.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A fresh laptop-sized tab; fails the test on any uncaught script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    script_errors: list[str] = []
    tab.on("pageerror", lambda error: script_errors.append(str(error)))
    yield tab
    context.close()
    assert not script_errors, f"uncaught errors in the page: {script_errors}"


@pytest.fixture
def open_ui(page: Any, live: Live) -> Callable[[str], Any]:
    """Opens the UI with the key in the URL, as `pigeonhole serve` prints it."""

    def open_at(route: str = "#/projects") -> Any:
        page.goto(f"{live.url}/?api_key={live.key}{route}")
        page.wait_for_selector("main h1")
        return page

    return open_at


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[..., Path]:
    """Saves a full-page screenshot into the test's folder; with ``docs=True`` and
    the variable ``PIGEONHOLE_SCREENSHOTS`` naming a folder, a screen-sized one there
    too (the README's pictures come from the end-to-end test this way)."""
    extra = os.environ.get("PIGEONHOLE_SCREENSHOTS")

    def take(page: Any, name: str, *, docs: bool = False) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        if extra and docs:
            Path(extra).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(extra) / f"{name}.png"))
        return path

    return take


@pytest.fixture
def drop() -> Callable[[Any, str, list[tuple[str, bytes, str]]], None]:
    """Drops files (name, bytes, MIME type) onto an element, as a person dragging
    them from a file manager would."""
    return drop_files


def drop_files(page: Any, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drops ``files`` (name, bytes, MIME type) onto the element, as a person
    dragging them from a file manager would."""
    payload = [
        {"name": name, "data": list(data), "type": mime} for name, data, mime in files
    ]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const file of files) {
                const bytes = new Uint8Array(file.data);
                transfer.items.add(new File([bytes], file.name, { type: file.type }));
            }
            return transfer;
        }""",
        payload,
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})

"""Helpers of the server tests: a real uvicorn server in a thread, and test files.

The server runs in a background thread on a socket bound before it starts, so no
other process can take the port in between. Tests talk to it with httpx.
"""

from __future__ import annotations

import io
import random
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from PIL import Image, ImageDraw

from pigeonhole.server import ServerSettings, create_app
from pigeonhole.server.auth import create_key
from pigeonhole.workspace import Workspace

API = "/api/v1"

#: Small limits, so that the tests can go over them cheaply.
TEST_SETTINGS = ServerSettings(max_upload_bytes=100_000, max_request_bytes=600_000)


@dataclass
class Live:
    """A running server with a read-write and a read-only key."""

    url: str
    workspace: Workspace
    app: FastAPI
    write_key: str
    read_key: str

    def client(self, key: str | None = None) -> httpx.Client:
        """A client sending ``key`` (the read-write key by default) as a Bearer."""
        key = self.write_key if key is None else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url + API, headers=headers, timeout=30)


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serves ``app`` with uvicorn in a thread; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, args=([listener],), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@contextmanager
def live_server(
    root: Path,
    settings: ServerSettings = TEST_SETTINGS,
    *,
    database_url: str | None = None,
) -> Iterator[Live]:
    """A new workspace at ``root`` (SQLite in it unless ``database_url`` names
    another database), its two keys, and a server for it."""
    workspace = Workspace.init(root, database_url=database_url)
    write_key, _ = create_key(workspace, "tests")
    read_key, _ = create_key(workspace, "viewer", read_only=True)
    app = create_app(workspace, settings=settings)
    try:
        with running(app) as url:
            yield Live(url, workspace, app, write_key, read_key)
    finally:
        workspace.close()


# Test files


def png(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    """PNG bytes of shapes drawn from ``seed``: other seeds, other pictures."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.randrange(size[0]) for _ in range(2))
        y0, y1 = sorted(rng.randrange(size[1]) for _ in range(2))
        draw.rectangle((x0, y0, x1 + 5, y1 + 5), fill=_colour(rng))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


#: The start of a PNG and then nothing an image decoder can use.
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"broken" * 20


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip archive holding ``members`` under exactly the given names."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def upload(
    client: httpx.Client,
    slug: str,
    files: list[tuple[str, bytes]],
    labels: list[str] | None = None,
    split: list[str] | None = None,
) -> httpx.Response:
    """POSTs ``files`` as one multipart upload with per-file fields."""
    data: dict[str, list[str]] = {}
    if labels is not None:
        data["labels"] = labels
    if split is not None:
        data["split"] = split
    parts = [("files", (name, content, "image/png")) for name, content in files]
    return client.post(f"/projects/{slug}/images", files=parts, data=data)

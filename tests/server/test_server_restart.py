"""A server killed in the middle of a training run, and the server started after it.

The server is a real ``pigeonhole serve`` process, killed with SIGKILL (no chance to
clean up) while its worker process fine-tunes. The worker must not outlive it, the
next server must report the run as failed, and nothing else may be lost.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_server_training import PER_CLASS, drawn_project

from pigeonhole.models.weights import fetch_weights
from pigeonhole.server.auth import create_key
from pigeonhole.training.runs import INTERRUPTED_MESSAGE
from pigeonhole.workspace import Workspace


@contextmanager
def serve(root: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``pigeonhole serve`` on a free port; yields the process and its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "pigeonhole", "serve", "-w", str(root)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), "the server did not start")
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Any, failure: str, timeout: float = 120) -> None:
    """Polls ``condition`` (a deadline against hanging, not a timing test)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_killed_server_loses_no_data_and_fails_its_run(tmp_path: Path) -> None:
    fetch_weights("mobilenet_v2")
    root = tmp_path / "workspace"
    with Workspace.init(root) as workspace:
        drawn_project(workspace, "Shapes", PER_CLASS)
        key, _ = create_key(workspace, "tests")
    headers = {"Authorization": f"Bearer {key}"}
    runs = "/api/v1/projects/shapes/runs"
    settings = {"mode": "fine-tune", "fine_tune": {"epochs": 200}}

    with serve(root) as (process, url):
        client = httpx.Client(base_url=url, headers=headers, timeout=30)
        run = client.post(runs, json=settings).json()
        wait_until(
            lambda: client.get(f"{runs}/{run['id']}").json()["status"] == "running",
            "the run never started",
        )
        workers = children(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        wait_until(
            lambda: not any(alive(pid) for pid in workers),
            f"the training worker {workers} outlived the killed server",
            timeout=30,
        )

    with serve(root) as (_, url):
        client = httpx.Client(base_url=url, headers=headers, timeout=30)
        found = client.get(f"{runs}/{run['id']}").json()
        project = client.get("/api/v1/projects/shapes").json()
        versions = client.get("/api/v1/projects/shapes/versions").json()
        again = client.post(runs, json={"mode": "fast"}).json()
        wait_until(
            lambda: (
                client.get(f"{runs}/{again['id']}").json()["status"]
                in ("succeeded", "failed")
            ),
            "the run after the restart did not end",
            timeout=300,
        )
        after = client.get(f"{runs}/{again['id']}").json()

    assert workers, "the server had no worker process to kill"
    assert (found["status"], found["message"]) == ("failed", INTERRUPTED_MESSAGE)
    assert project["images"] == sum(PER_CLASS.values()) * 3
    assert [version["number"] for version in versions] == [1]
    # The workspace goes on working: a new run trains a model.
    assert (after["status"], after["model_number"]) == ("succeeded", 1), after

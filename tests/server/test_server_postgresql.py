"""The server on a PostgreSQL workspace: training in the worker process, serving,
the prediction log and its hourly counts, keys and suggestions."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_kit import Live, live_server
from test_server_training import PER_CLASS, drawn_project, wait_for_end

from modelgen import CLASS_NAMES, encode, picture
from pigeonhole.models.weights import fetch_weights
from pigeonhole.server import ServerSettings
from postgres import PostgresServer

SETTINGS = ServerSettings(record_images=True)


@pytest.fixture(scope="module")
def live(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    fetch_weights("mobilenet_v2")
    root = tmp_path_factory.mktemp("postgres") / "workspace"
    url = postgres.new_database()
    with live_server(root, SETTINGS, database_url=url) as server:
        drawn_project(server.workspace, "Shapes", PER_CLASS)
        yield server
        server.app.state.worker.stop()


@pytest.mark.slow
def test_train_serve_log_and_suggest_on_postgresql(live: Live, tmp_path: Path) -> None:
    assert live.workspace.engine.dialect.name == "postgresql"
    client = live.client()
    run = client.post("/projects/shapes/runs", json={"mode": "fast"}).json()
    ended = wait_for_end(client, "shapes", run["id"])
    image = encode(picture(999, 1, size=(96, 80)), "PNG")
    body = {
        "model_id": "shapes/1",
        "api_key": live.write_key,
        "image": {"type": "base64", "value": base64.b64encode(image).decode()},
    }

    answer = httpx.post(f"{live.url}/infer/classification", json=body).json()
    logged = client.get("/projects/shapes/predictions").json()
    counts = client.get("/projects/shapes/predictions/counts").json()
    sent = client.post(
        f"/projects/shapes/predictions/{logged[0]['id']}/send-to-project"
    ).json()
    waiting = client.get("/projects/shapes/images", params={"suggested": True}).json()
    accepted = client.post(
        "/projects/shapes/suggestions/accept", json={"image_ids": [sent["image"]["id"]]}
    ).json()
    key = client.post("/keys", json={"name": "gate", "read_only": True}).json()
    revoked = client.delete(f"/keys/{key['id']}").json()

    assert (ended["status"], ended["model_number"]) == ("succeeded", 1), ended
    assert ended["history"] and ended["finished_at"] is not None
    assert answer["top"] in CLASS_NAMES
    assert logged[0]["inference_id"] == answer["inference_id"]
    assert sum(item["count"] for item in counts) == 1
    assert waiting["total"] == 1
    assert accepted == {"changed": 1}
    assert revoked["revoked"] is True
    client.close()

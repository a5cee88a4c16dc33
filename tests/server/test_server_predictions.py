"""The prediction log, suggested labels and webhooks, against a real server."""

from __future__ import annotations

import base64
import http.server
import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from modelkit import add_model, colour_image
from server_kit import Live, live_server

from modelgen import encode
from pigeonhole.server import ServerSettings
from pigeonhole.server.webhooks import WebhookSender, add_webhook


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = ServerSettings(record_images=True, start_worker=False)
    root = tmp_path_factory.mktemp("predictions") / "workspace"
    with live_server(root, settings) as server:
        server.workspace.create_project("Colours", classes=["red", "green", "blue"])
        add_model(server.workspace, "colours", 1, rejection_threshold=0.8)
        yield server


@pytest.fixture
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client() as opened:
        yield opened


def infer(live: Live, colour: str) -> dict[str, Any]:
    body = {
        "model_id": "colours/1",
        "api_key": live.write_key,
        "image": {
            "type": "base64",
            "value": base64.b64encode(encode(colour_image(colour), "PNG")).decode(),
        },
    }
    answer: dict[str, Any] = httpx.post(
        f"{live.url}/infer/classification", json=body
    ).json()
    return answer


@pytest.fixture(scope="module")
def predicted(live: Live) -> list[dict[str, Any]]:
    """Five predictions: red, red, blue, and two with no result (grey)."""
    return [infer(live, colour) for colour in ("red", "red", "blue", "grey", "grey")]


def test_every_prediction_is_logged(
    client: httpx.Client, predicted: list[dict[str, Any]]
) -> None:
    logged = client.get("/projects/colours/predictions").json()

    ids = {item["inference_id"] for item in logged}
    assert {answer["inference_id"] for answer in predicted} <= ids
    newest = logged[0]
    assert newest["model_id"] == "colours/1" and newest["top"] is None


@pytest.mark.parametrize(
    ("name", "expected"), [("red", 2), ("blue", 1), ("", 2), ("green", 0)], ids=str
)
def test_query_by_class(
    client: httpx.Client, predicted: list[dict[str, Any]], name: str, expected: int
) -> None:
    logged = client.get("/projects/colours/predictions", params={"class": name})

    assert len(logged.json()) == expected


def test_query_by_time(client: httpx.Client, predicted: list[dict[str, Any]]) -> None:
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    after_now = client.get("/projects/colours/predictions", params={"since": later})
    before_now = client.get("/projects/colours/predictions", params={"since": earlier})
    bad = client.get("/projects/colours/predictions", params={"since": "yesterday"})

    assert after_now.json() == []
    assert len(before_now.json()) >= 5
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["message"]


def test_counts_per_class_per_hour(
    client: httpx.Client, predicted: list[dict[str, Any]]
) -> None:
    counts = client.get("/projects/colours/predictions/counts").json()

    total: dict[str | None, int] = {}
    for item in counts:
        total[item["class"]] = total.get(item["class"], 0) + item["count"]
        assert item["hour"].endswith(":00:00+00:00")
    assert total["red"] >= 2 and total["blue"] >= 1 and total[None] >= 2


def test_send_to_project_adds_an_unlabelled_image_with_a_suggestion(
    client: httpx.Client, predicted: list[dict[str, Any]]
) -> None:
    logged = client.get("/projects/colours/predictions", params={"class": "blue"})
    prediction_id = logged.json()[0]["id"]

    sent = client.post(
        f"/projects/colours/predictions/{prediction_id}/send-to-project"
    ).json()
    suggestions = client.get("/projects/colours/suggestions").json()
    after = client.get(f"/projects/colours/predictions/{prediction_id}").json()

    image_id = sent["image"]["id"]
    assert sent["image"]["labels"] == []
    assert suggestions[str(image_id)]["labels"] == ["blue"]
    assert suggestions[str(image_id)]["model_id"] == "colours/1"
    assert after["sent_image_id"] == image_id


def test_a_person_accepts_a_suggestion(
    client: httpx.Client, predicted: list[dict[str, Any]]
) -> None:
    logged = client.get("/projects/colours/predictions", params={"class": "red"})
    prediction_id = logged.json()[0]["id"]
    sent = client.post(
        f"/projects/colours/predictions/{prediction_id}/send-to-project"
    ).json()
    image_id = sent["image"]["id"]

    waiting = client.get("/projects/colours/images", params={"suggested": True})
    accepted = client.post(
        "/projects/colours/suggestions/accept", json={"image_ids": [image_id]}
    )
    image = client.get(f"/projects/colours/images/{image_id}").json()
    again = client.post(
        "/projects/colours/suggestions/accept", json={"image_ids": [image_id]}
    )
    left = client.get("/projects/colours/images", params={"suggested": True}).json()

    assert image_id in [item["id"] for item in waiting.json()["images"]]
    assert sent["image"]["suggestion"]["labels"] == ["red"]
    assert accepted.json() == {"changed": 1}
    assert image["labels"] == ["red"] and image["suggestion"] is None
    assert again.json() == {"changed": 0}
    assert image_id not in [item["id"] for item in left["images"]]


def test_accepting_an_unknown_image_is_404(client: httpx.Client) -> None:
    response = client.post(
        "/projects/colours/suggestions/accept", json={"image_ids": [987654]}
    )

    assert response.status_code == 404
    assert "987654" in response.json()["message"]


def test_send_needs_a_write_key(live: Live, predicted: list[dict[str, Any]]) -> None:
    with live.client(live.read_key) as reader:
        prediction_id = reader.get("/projects/colours/predictions").json()[0]["id"]
        response = reader.post(
            f"/projects/colours/predictions/{prediction_id}/send-to-project"
        )

    assert response.status_code == 403


# Webhooks


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """A local HTTP server collecting the JSON it receives; fails the first POST."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    calls = {"count": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls["count"] += 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if calls["count"] == 1:
                self.send_response(503)  # the sender must retry
                self.end_headers()
                return
            received.put(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_receives_matching_predictions_after_a_retry(
    live: Live,
    client: httpx.Client,
    receiver: tuple[str, queue.Queue[dict[str, Any]]],
) -> None:
    url, received = receiver
    live.app.state.webhooks.backoff_s = 0.05
    created = client.post(
        "/projects/colours/webhooks", json={"url": url, "classes": ["green"]}
    )

    infer(live, "red")  # filtered out by class
    answer = infer(live, "green")
    event = received.get(timeout=20)
    client.delete(f"/projects/colours/webhooks/{created.json()['id']}")

    assert created.status_code == 201
    assert event["event"] == "prediction"
    assert event["inference_id"] == answer["inference_id"]
    assert event["top"] == "green"
    assert received.empty()


def test_webhook_below_confidence_and_run_events(
    live: Live, receiver: tuple[str, queue.Queue[dict[str, Any]]]
) -> None:
    url, received = receiver
    project = live.workspace.project("colours")
    add_webhook(project, url, below_confidence=0.8, on_runs=True)
    sender = WebhookSender(live.workspace, backoff_s=0.01)

    sender.send(
        {"event": "prediction", "project": "colours", "top": "red", "confidence": 0.99}
    )
    sender.send(
        {"event": "prediction", "project": "colours", "top": "red", "confidence": 0.5}
    )
    sender.send({"event": "run.ended", "project": "colours", "run": {"id": 7}})
    sender.stop()

    events = [received.get_nowait() for _ in range(received.qsize())]
    assert [(e["event"], e.get("confidence")) for e in events] == [
        ("prediction", 0.5),
        ("run.ended", None),
    ]


def test_webhook_url_is_checked(client: httpx.Client) -> None:
    response = client.post("/projects/colours/webhooks", json={"url": "ftp://x"})

    assert response.status_code == 400
    assert "http:// or https://" in response.json()["message"]

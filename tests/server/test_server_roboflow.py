"""Roboflow-compatible inference against a real server, with the real inference-sdk."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import io
import threading
from collections.abc import Iterator

import httpx
import pytest
from inference_sdk import InferenceConfiguration, InferenceHTTPClient
from inference_sdk.http.errors import HTTPCallErrorError
from modelkit import add_model, colour_image
from PIL import Image
from server_kit import CORRUPT_PNG, Live, live_server

from pigeonhole.server import ServerSettings


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = ServerSettings(max_upload_bytes=100_000, max_request_bytes=600_000)
    root = tmp_path_factory.mktemp("roboflow") / "workspace"
    with live_server(root, settings) as server:
        workspace = server.workspace
        workspace.create_project("Colours", classes=["red", "green", "blue"])
        workspace.create_project(
            "Tags", type="multi-label", classes=["red", "green", "blue"]
        )
        add_model(workspace, "colours", 1, rejection_threshold=0.8)
        add_model(workspace, "tags", 1, multi_label=True)
        yield server


@pytest.fixture
def raw(live: Live) -> Iterator[httpx.Client]:
    """A client at the server root, with no key."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def b64(image: Image.Image) -> str:
    return base64.b64encode(png_bytes(image)).decode()


# The inference-sdk client


@pytest.mark.parametrize("transport", ["legacy", "header"])
def test_sdk_client_classifies(live: Live, transport: str) -> None:
    # The client's key travels in the query or body (legacy) or as a Bearer header.
    client = InferenceHTTPClient(api_url=live.url, api_key=live.write_key)
    client.configure(InferenceConfiguration(api_key_transport=transport))

    answer = client.infer(colour_image("green"), model_id="colours/1")

    assert isinstance(answer, dict)
    assert answer["top"] == "green"
    assert answer["confidence"] > 0.8
    assert answer["predictions"][0] == {
        "class": "green",
        "class_id": 1,
        "confidence": answer["confidence"],
    }
    assert {"inference_id", "time", "image"} <= answer.keys()


def test_sdk_client_batch_gives_one_answer_per_image(live: Live) -> None:
    client = InferenceHTTPClient(api_url=live.url, api_key=live.read_key)
    images = [colour_image(name) for name in ("red", "blue", "green")]

    answers = client.infer(images, model_id="colours/1")

    assert [answer["top"] for answer in answers] == ["red", "blue", "green"]


def test_sdk_client_older_route(live: Live) -> None:
    client = InferenceHTTPClient(api_url=live.url, api_key=live.write_key)
    client.select_api_v0()

    answer = client.infer(colour_image("blue"), model_id="colours/1")

    assert answer["top"] == "blue"


def test_sdk_client_multi_label(live: Live) -> None:
    client = InferenceHTTPClient(api_url=live.url, api_key=live.write_key)

    answer = client.infer(colour_image("red"), model_id="tags/1")

    assert set(answer["predictions"]) == {"red", "green", "blue"}
    assert answer["predictions"]["red"]["class_id"] == 0
    assert answer["predicted_classes"] == ["red"]


def test_sdk_client_unknown_model_fails(live: Live) -> None:
    client = InferenceHTTPClient(api_url=live.url, api_key=live.write_key)

    with pytest.raises(HTTPCallErrorError) as raised:
        client.infer(colour_image("red"), model_id="colours/9")

    assert raised.value.status_code == 404


# /infer/classification by hand


def test_infer_answers_a_list_for_a_list(raw: httpx.Client, live: Live) -> None:
    body = {
        "model_id": "colours/1",
        "api_key": live.read_key,
        "image": [{"type": "base64", "value": b64(colour_image("red"))}],
    }

    response = raw.post("/infer/classification", json=body)

    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)
    assert response.json()[0]["top"] == "red"
    assert response.json()[0]["image"] == {"width": 40, "height": 30}


def test_nothing_over_the_threshold_gives_an_empty_answer(
    raw: httpx.Client, live: Live
) -> None:
    body = {
        "model_id": "colours/1",
        "api_key": live.write_key,
        "image": {"type": "base64", "value": b64(colour_image("grey"))},
    }

    answer = raw.post("/infer/classification", json=body).json()

    assert (answer["predictions"], answer["top"], answer["confidence"]) == (
        [],
        "",
        0.0,
    )


def test_caller_confidence_lists_classes_above_it(
    raw: httpx.Client, live: Live
) -> None:
    body = {
        "model_id": "colours/1",
        "api_key": live.write_key,
        "image": {"type": "base64", "value": b64(colour_image("grey"))},
        "confidence": 0.0,
    }

    answer = raw.post("/infer/classification", json=body).json()

    confidences = [item["confidence"] for item in answer["predictions"]]
    assert len(confidences) == 3
    assert confidences == sorted(confidences, reverse=True)
    assert answer["top"] == answer["predictions"][0]["class"]


# The older route


def test_older_route_takes_a_multipart_file(raw: httpx.Client, live: Live) -> None:
    response = raw.post(
        "/colours/1",
        params={"api_key": live.write_key},
        files={"file": ("x.png", png_bytes(colour_image("red")), "image/png")},
    )

    assert response.status_code == 200, response.text
    assert response.json()["top"] == "red"


@pytest.mark.parametrize(
    ("confidence", "top"), [(50, "blue"), (70, ""), (0.5, "blue")], ids=str
)
def test_older_route_confidence_one_or_more_is_a_percentage(
    raw: httpx.Client, live: Live, confidence: float, top: str
) -> None:
    # A grey picture is "blue" at about 0.6, under the model's own 0.8.
    response = raw.post(
        "/colours/1",
        params={"api_key": live.write_key, "confidence": confidence},
        content=b64(colour_image("grey")),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["top"] == top


@pytest.fixture
def image_server() -> Iterator[str]:
    """A loopback HTTP server answering every GET with a blue PNG."""
    data = png_bytes(colour_image("blue"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/blue.png"
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_url_is_refused(
    raw: httpx.Client, live: Live, image_server: str
) -> None:
    response = raw.post(
        "/colours/1", params={"api_key": live.write_key, "image": image_server}
    )

    assert response.status_code == 400
    assert "127.0.0.1" in response.json()["message"]


def test_url_image_when_private_addresses_are_allowed(
    raw: httpx.Client, live: Live, image_server: str
) -> None:
    settings = live.app.state.settings
    live.app.state.settings = dataclasses.replace(settings, allow_private_urls=True)
    try:
        by_query = raw.post(
            "/colours/1", params={"api_key": live.write_key, "image": image_server}
        )
        by_json = raw.post(
            "/infer/classification",
            json={
                "model_id": "colours/1",
                "api_key": live.write_key,
                "image": {"type": "url", "value": image_server},
            },
        )
    finally:
        live.app.state.settings = settings

    assert by_query.json()["top"] == "blue"
    assert by_json.json()["top"] == "blue"


# Registry, info and errors


def test_registry_add_remove_clear(raw: httpx.Client, live: Live) -> None:
    key = {"api_key": live.write_key}

    raw.post("/model/clear", params=key)
    added = raw.post("/model/add", json={"model_id": "tags/1", **key}).json()
    removed = raw.post("/model/remove", json={"model_id": "tags/1", **key}).json()

    assert added["models"][0]["model_id"] == "tags/1"
    assert added["models"][0]["task_type"] == "classification"
    assert added["models"][0]["input_width"] == 32
    assert removed == {"models": []}
    assert raw.get("/model/registry", params=key).json() == {"models": []}


def test_info(raw: httpx.Client, live: Live) -> None:
    info = raw.get("/info", params={"api_key": live.read_key}).json()

    assert info["name"] == "Pigeonhole" and info["uuid"]


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("ph_not-a-real-key-at-all", 401)],
    ids=["missing", "unknown"],
)
def test_keys_are_checked(raw: httpx.Client, key: str | None, status: int) -> None:
    body = {"model_id": "colours/1", "image": {"type": "base64", "value": "AAAA"}}
    if key:
        body["api_key"] = key

    response = raw.post("/infer/classification", json=body)

    assert response.status_code == status
    assert "API key" in response.json()["message"]


def test_corrupt_image_is_a_400_and_the_server_keeps_serving(
    raw: httpx.Client, live: Live
) -> None:
    bad = {
        "model_id": "colours/1",
        "api_key": live.write_key,
        "image": {"type": "base64", "value": base64.b64encode(CORRUPT_PNG).decode()},
    }

    response = raw.post("/infer/classification", json=bad)
    after = raw.post(
        "/colours/1",
        params={"api_key": live.write_key},
        content=b64(colour_image("red")),
    )

    assert response.status_code == 400
    assert "the image" in response.json()["message"]
    assert after.json()["top"] == "red"


def test_oversize_image_is_a_413(raw: httpx.Client, live: Live) -> None:
    big = base64.b64encode(b"\x00" * 150_000).decode()

    response = raw.post("/colours/1", params={"api_key": live.write_key}, content=big)

    assert response.status_code == 413
    assert "limit" in response.json()["message"]


@pytest.mark.parametrize(
    ("model_id", "status"),
    [("colours", 400), ("nope/1", 404), ("colours/0", 400)],
    ids=["no-number", "no-project", "zero"],
)
def test_bad_model_ids(
    raw: httpx.Client, live: Live, model_id: str, status: int
) -> None:
    body = {"model_id": model_id, "api_key": live.write_key}

    response = raw.post("/model/add", json=body)

    assert response.status_code == status
    assert model_id in response.json()["message"]

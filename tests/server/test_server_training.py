"""Training runs and models over HTTP, with the real worker process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from modelkit import add_model, colour_image
from server_kit import Live, live_server

from modelgen import CLASS_NAMES, encode, picture
from pigeonhole.models.weights import fetch_weights
from pigeonhole.project import Project
from pigeonhole.server import ServerSettings, create_app
from pigeonhole.training.runs import INTERRUPTED_MESSAGE, create_run, get_run
from pigeonhole.workspace import Workspace

PER_CLASS = {"train": 8, "valid": 4, "test": 4}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("training") / "workspace"
    with live_server(root) as server:
        server.workspace.create_project("Colours", classes=list(CLASS_NAMES))
        add_model(server.workspace, "colours", 1)
        yield server
        server.app.state.worker.stop()


@pytest.fixture
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client() as opened:
        yield opened


def drawn_project(workspace: Workspace, name: str, splits: dict[str, int]) -> Project:
    project = workspace.create_project(name, classes=list(CLASS_NAMES))
    index = 0
    for split, count in splits.items():
        for class_id, class_name in enumerate(CLASS_NAMES):
            for _ in range(count):
                index += 1
                data = encode(picture(index, class_id, size=(96, 80)), "PNG")
                project.add_image(data, labels=[class_name], split=split)
    project.create_version()
    return project


def wait_for_end(client: httpx.Client, slug: str, run_id: int) -> dict[str, Any]:
    """Polls the run until it ends (a deadline against hanging, not a timing test)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/projects/{slug}/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end: {run}")


# Models


def test_models_list_and_get(client: httpx.Client) -> None:
    listed = client.get("/projects/colours/models").json()
    one = client.get("/projects/colours/models/1").json()

    assert [model["model_id"] for model in listed] == ["colours/1"]
    assert listed[0]["class_names"] == list(CLASS_NAMES)
    assert "path" not in one
    assert one["metadata"]["class_names"] == list(CLASS_NAMES)
    assert one["metrics"] == {"accuracy": 1.0}


def test_model_plots(client: httpx.Client, live: Live) -> None:
    plots = live.workspace.root / "models" / "colours" / "1" / "plots"
    plots.mkdir(exist_ok=True)
    colour_image("red").save(plots / "confusion.png")

    listed = client.get("/projects/colours/models/1").json()["plots"]
    plot = client.get("/projects/colours/models/1/plots/confusion.png")
    missing = client.get("/projects/colours/models/1/plots/nope.png")

    assert listed == ["confusion.png"]
    assert plot.headers["content-type"] == "image/png"
    assert plot.content == (plots / "confusion.png").read_bytes()
    assert missing.status_code == 404
    assert "confusion.png" in missing.json()["message"]


def test_predict_answers_per_file(client: httpx.Client) -> None:
    files = [
        ("files", (f"{name}.png", encode(colour_image(name), "PNG"), "image/png"))
        for name in ("blue", "red")
    ]

    answers = client.post("/projects/colours/models/1/predict", files=files).json()

    assert [answer["top"] for answer in answers] == ["blue", "red"]
    assert [answer["filename"] for answer in answers] == ["blue.png", "red.png"]
    assert answers[0]["classes"][0]["name"] == "blue"


def test_predict_with_a_read_only_key(live: Live) -> None:
    files = {"files": ("g.png", encode(colour_image("green"), "PNG"), "image/png")}

    with live.client(live.read_key) as reader:
        response = reader.post("/projects/colours/models/1/predict", files=files)

    assert response.status_code == 200
    assert response.json()[0]["top"] == "green"


def test_delete_model_needs_write_and_unloads(live: Live, client: httpx.Client) -> None:
    add_model(live.workspace, "colours", 2)
    client.post("/projects/colours/models/2/predict", files=_red())

    with live.client(live.read_key) as reader:
        refused = reader.delete("/projects/colours/models/2")
    deleted = client.delete("/projects/colours/models/2")
    after = client.post("/projects/colours/models/2/predict", files=_red())

    assert refused.status_code == 403
    assert deleted.status_code == 204
    assert after.status_code == 404
    assert not (live.workspace.root / "models" / "colours" / "2").exists()


def _red() -> dict[str, tuple[str, bytes, str]]:
    return {"files": ("r.png", encode(colour_image("red"), "PNG"), "image/png")}


# Runs


def test_run_without_valid_images_fails_in_the_worker(
    live: Live, client: httpx.Client
) -> None:
    drawn_project(live.workspace, "No Valid", {"train": 2})

    started = client.post("/projects/no-valid/runs", json={})
    run = wait_for_end(client, "no-valid", started.json()["id"])
    logs = client.get(f"/projects/no-valid/runs/{run['id']}/logs").json()

    assert started.status_code == 201
    assert started.json()["status"] == "queued"
    assert run["status"] == "failed"
    assert "no valid images" in logs["message"]


def test_run_settings_are_checked(client: httpx.Client, live: Live) -> None:
    response = client.post("/projects/colours/runs", json={"mode": "slow"})

    assert response.status_code in (400, 404)
    assert response.json()["message"]


def test_cancel_queued_run(live: Live, client: httpx.Client) -> None:
    project = drawn_project(live.workspace, "Cancel Me", {"train": 1, "valid": 1})
    run = create_run(project)  # queued, never handed to the worker

    cancelled = client.post(f"/projects/cancel-me/runs/{run.id}/cancel").json()
    listed = client.get("/projects/cancel-me/runs").json()

    assert cancelled["status"] == "cancelled"
    assert [item["id"] for item in listed] == [run.id]


def test_run_of_another_project_is_not_found(live: Live, client: httpx.Client) -> None:
    project = drawn_project(live.workspace, "Other", {"train": 1})
    run = create_run(project)

    response = client.get(f"/projects/colours/runs/{run.id}")

    assert response.status_code == 404


def test_new_server_fails_interrupted_runs(tmp_path: Any) -> None:
    workspace = Workspace.init(tmp_path / "workspace")
    project = drawn_project(workspace, "Stuck", {"train": 1})
    run = create_run(project)

    create_app(workspace, settings=ServerSettings())

    found = get_run(workspace, run.id)
    assert (found.status, found.message) == ("failed", INTERRUPTED_MESSAGE)
    workspace.close()


@pytest.mark.slow
def test_fast_run_makes_a_model_that_serves(live: Live, client: httpx.Client) -> None:
    fetch_weights("mobilenet_v2")
    drawn_project(live.workspace, "Shapes", PER_CLASS)

    started = client.post("/projects/shapes/runs", json={"mode": "fast", "seed": 1})
    run = wait_for_end(client, "shapes", started.json()["id"])
    models = client.get("/projects/shapes/models").json()
    image = encode(picture(5000, 2, size=(96, 80)), "PNG")
    answer = httpx.post(
        f"{live.url}/shapes/1",
        params={"api_key": live.write_key, "confidence": 0},
        files={"file": ("x.png", image, "image/png")},
    ).json()

    assert run["status"] == "succeeded", run["message"]
    assert run["model_number"] == 1
    assert [model["model_id"] for model in models] == ["shapes/1"]
    assert {p["class"] for p in answer["predictions"]} == set(CLASS_NAMES)

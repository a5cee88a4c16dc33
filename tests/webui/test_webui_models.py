"""Pages that need a trained model: Evaluate (and the web UI's helper routes)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

import modelgen
from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.preprocessing import Preprocessing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(live: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A project of drawn red, green and blue pictures with a fast-mode model."""
    source = tmp_path_factory.mktemp("shapes")
    for class_id, name in enumerate(modelgen.CLASS_NAMES):
        (source / name).mkdir()
        for seed in range(10):
            picture = modelgen.picture(seed, class_id, size=(96, 80))
            picture.save(source / name / f"{seed}.png")
    project = live.workspace.create_project("Colours", classes=modelgen.CLASS_NAMES)
    project.import_path(source)
    project.split()
    project.create_version(Preprocessing(resize=(96, 96)), Augmentation())
    project.train()
    return project.slug


def test_evaluate_opens_a_confusion_cell_as_images(
    open_ui: Any, live: Any, trained: str, shoot: Any
) -> None:
    page = open_ui(f"#/p/{trained}/evaluate")

    expect(page.get_by_role("table", name="Test metrics")).to_contain_text("accuracy")
    matrix = page.get_by_role("table", name="Confusion matrix")
    cell = matrix.get_by_role("button", name="images of red predicted red")
    count = int(cell.inner_text())
    cell.click()
    heading = page.get_by_role("heading", name="True red, predicted red")
    expect(heading).to_contain_text(f"{count} image(s)")
    expect(page.locator("#cell-images figure")).to_have_count(count)
    reliability = page.get_by_role("img", name="Reliability diagram")
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0",
        arg=reliability.element_handle(),
    )
    shoot(page, "evaluate")


def test_the_helper_routes_need_a_key_and_name_missing_plots(
    live: Any, trained: str
) -> None:
    helper = f"{live.url}/ui/api/projects/{trained}/models"
    anonymous = httpx.get(helper)
    with live.client() as client:
        missing = client.get(f"{helper}/1/plots/nope.png")
        models = client.get(helper).json()
    assert anonymous.status_code == 401
    assert missing.status_code == 404
    assert "reliability.png" in missing.json()["message"]
    assert [model["model_id"] for model in models] == [f"{trained}/1"]


def test_deploy_predicts_a_dropped_image(
    open_ui: Any, live: Any, trained: str, drop: Any, shoot: Any
) -> None:
    page = open_ui(f"#/p/{trained}/deploy")
    photo = modelgen.encode(modelgen.picture(100, 0, size=(96, 80)), "PNG")
    page.get_by_label("Confidence threshold").fill("0")
    drop(page, "#predict-drop", [("red.png", photo, "image/png")])

    answer = page.locator("#prediction .top-answer")
    expect(answer).to_contain_text("Top: ")
    bars = page.locator("#prediction .bar")
    expect(bars).to_have_count(len(modelgen.CLASS_NAMES))
    with live.client() as client:
        served = client.post(
            f"{live.url}/infer/classification",
            json={
                "model_id": f"{trained}/1",
                "image": {"type": "base64", "value": base64.b64encode(photo).decode()},
                "confidence": 0,
            },
        ).json()
    expect(answer).to_contain_text(f"Top: {served['top']}")
    expect(page.get_by_role("button", name="Copy inference-sdk")).to_be_visible()
    expect(page.get_by_label("inference-sdk snippet")).to_contain_text(
        f'model_id="{trained}/1"'
    )
    shoot(page, "deploy")


def test_deploy_says_no_result_above_every_confidence(
    open_ui: Any, trained: str, drop: Any
) -> None:
    page = open_ui(f"#/p/{trained}/deploy")
    page.get_by_label("Confidence threshold").fill("1")
    photo = modelgen.encode(modelgen.picture(101, 1, size=(96, 80)), "PNG")
    drop(page, "#predict-drop", [("green.png", photo, "image/png")])

    expect(page.locator("#prediction")).to_contain_text("No result")


def test_deploy_shows_a_corrupt_image_as_a_message(
    open_ui: Any, trained: str, drop: Any
) -> None:
    page = open_ui(f"#/p/{trained}/deploy")
    drop(
        page, "#predict-drop", [("broken.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")]
    )

    expect(page.get_by_role("alert")).to_contain_text("Error:")


def test_a_run_shows_live_progress_and_can_be_cancelled(
    open_ui: Any, trained: str
) -> None:
    page = open_ui(f"#/p/{trained}/train")
    page.get_by_label("Mode").select_option("fine-tune")
    page.get_by_role("button", name="Start training").click()
    progress = page.locator("#run-progress")
    expect(progress.locator(".run-status")).to_have_text("running", timeout=60_000)
    progress.get_by_role("button", name="Cancel run").click()

    expect(progress.locator(".run-status")).to_have_text("cancelled", timeout=60_000)
    expect(page.get_by_role("table", name="Runs")).to_contain_text("cancelled")

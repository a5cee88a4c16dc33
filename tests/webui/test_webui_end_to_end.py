"""A new user's whole path in the browser: from an empty workspace to a served model.

Create a project, upload images (one of them corrupt), label with the keyboard,
split, generate a version, train a fast model and watch its progress end, open the
confusion matrix, then predict by dropping an image and check the answer. Every
page is photographed into the test's folder (and into ``$PIGEONHOLE_SCREENSHOTS``).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

import modelgen

PER_CLASS = 8
SIZE = (96, 80)


def _pictures(class_id: int, first: int = 0) -> list[dict[str, Any]]:
    name = modelgen.CLASS_NAMES[class_id]
    return [
        {
            "name": f"{name}-{seed}.png",
            "mimeType": "image/png",
            "buffer": modelgen.encode(
                modelgen.picture(seed, class_id, size=SIZE), "PNG"
            ),
        }
        for seed in range(first, first + PER_CLASS)
    ]


@pytest.mark.slow
def test_from_an_empty_workspace_to_a_served_model(
    open_ui: Any, live: Any, drop: Any, shoot: Any
) -> None:
    page = open_ui("#/projects")
    expect(page.get_by_text("No projects yet")).to_be_visible()
    page.get_by_label("Name").fill("Colour cards")
    page.get_by_label("Classes").fill("red, green, blue")
    shoot(page, "1-projects", docs=True)
    page.get_by_role("button", name="Create project").click()

    # Upload: two classes labelled on the way in, blue unlabelled plus a corrupt
    # file dropped onto the page.
    expect(page.get_by_role("heading", name="Upload to Colour cards")).to_be_visible()
    summary = page.locator("#upload-summary")
    for class_id in (0, 1):
        page.get_by_label("Label every file as").select_option(
            modelgen.CLASS_NAMES[class_id]
        )
        page.get_by_label("choose files").set_input_files(_pictures(class_id))
        expect(summary).to_contain_text(f"{PER_CLASS} imported")
    page.get_by_label("Label every file as").select_option("")
    blue = [(item["name"], item["buffer"], "image/png") for item in _pictures(2)]
    drop(page, "#dropzone", [*blue, ("scan.png", b"\x89PNG\r\n\x1a\nbad", "image/png")])
    expect(summary).to_contain_text(
        f"{PER_CLASS} imported, 0 duplicate(s) skipped, 1 refused"
    )
    expect(summary.locator(".refused")).to_contain_text("scan.png")
    shoot(page, "2-upload", docs=True)

    # Label the unlabelled ones with the keyboard: 3 is blue.
    page.get_by_role("link", name="Go on to labelling").click()
    page.get_by_label("Unlabelled only").check()
    grid = page.get_by_role("listbox", name="Images")
    expect(grid.get_by_role("option")).to_have_count(PER_CLASS)
    grid.get_by_role("option").first.focus()
    for _ in range(PER_CLASS):
        page.keyboard.press("3")
    expect(grid.get_by_role("option").last).to_contain_text("blue")
    shoot(page, "3-label", docs=True)
    with live.client() as client:
        assert client.get("/projects/colour-cards").json()["unlabelled"] == 0

    page.get_by_role("link", name="Health").click()
    expect(page.get_by_role("heading", name="Health of Colour cards")).to_be_visible()
    shoot(page, "4-health", docs=True)

    # Split 70/20/10 and freeze a version.
    page.get_by_role("link", name="Split & versions").click()
    page.get_by_role("button", name="70 / 20 / 10").click()
    page.get_by_role("button", name="Apply split").click()
    expect(page.locator("#split-result")).to_contain_text(f"Assigned {3 * PER_CLASS}")
    page.get_by_label("Resize to").fill("96")
    page.get_by_role("button", name="Generate version").click()
    expect(page.get_by_role("table", name="Versions")).to_contain_text("v1")
    shoot(page, "5-versions", docs=True)

    # Train a fast model and follow it to the end.
    page.get_by_role("link", name="Train").click()
    page.get_by_label("Mode").select_option("fast")
    page.get_by_role("button", name="Start training").click()
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("Phase:")
    expect(progress.locator(".run-status")).to_have_text("succeeded", timeout=180_000)
    shoot(page, "6-train", docs=True)

    # Evaluate: the confusion matrix, one of its cells as images.
    progress.get_by_role("link", name="evaluate it").click()
    matrix = page.get_by_role("table", name="Confusion matrix")
    expect(matrix).to_be_visible()
    matrix.get_by_role("button", name="images of blue predicted blue").click()
    expect(
        page.get_by_role("heading", name="True blue, predicted blue")
    ).to_be_visible()
    shoot(page, "7-evaluate", docs=True)

    # Deploy: drop a red card the model has never seen.
    page.get_by_role("link", name="Deploy").click()
    page.get_by_label("Confidence threshold").fill("0")
    card = modelgen.encode(modelgen.picture(500, 0, size=SIZE), "PNG")
    drop(page, "#predict-drop", [("new-card.png", card, "image/png")])
    expect(page.locator("#prediction .top-answer")).to_contain_text("Top: red")
    shoot(page, "8-deploy", docs=True)

"""The first pages in a real chromium: key, projects, upload and keyboard labelling."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

import imagegen
from pigeonhole.datasets.suggestions import suggest

CORRUPT = b"\x89PNG\r\n\x1a\n" + b"not an image at all" * 8


def test_the_page_asks_for_a_key_and_keeps_it(page: Any, live: Any) -> None:
    page.goto(live.url + "/")
    page.get_by_label("API key", exact=True).fill(live.key)
    page.get_by_role("button", name="Use this key").click()

    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()


def test_a_wrong_key_is_explained_not_crashed_on(page: Any, live: Any) -> None:
    page.goto(live.url + "/?api_key=ph_wrongwrongwrong")

    expect(page.get_by_text(re.compile("unknown API key ph_wrong"))).to_be_visible()
    expect(page.get_by_label("API key", exact=True)).to_be_visible()


def test_create_upload_and_label_with_the_keyboard(
    open_ui: Any, live: Any, shoot: Any
) -> None:
    page = open_ui("#/projects")
    page.get_by_label("Name").fill("Shapes")
    page.get_by_label("Classes").fill("red, green")
    page.get_by_role("button", name="Create project").click()

    expect(page.get_by_role("heading", name="Upload to Shapes")).to_be_visible()
    page.get_by_label("choose files").set_input_files(
        [_file(f"shape{n}.png", imagegen.png(n)) for n in range(4)]
        + [_file("broken.png", CORRUPT)]
    )
    summary = page.locator("#upload-summary")
    expect(summary).to_contain_text("4 imported, 0 duplicate(s) skipped, 1 refused")
    expect(summary.locator(".refused li")).to_contain_text("broken.png")
    shoot(page, "upload")

    page.get_by_role("link", name="Go on to labelling").click()
    grid = page.get_by_role("listbox", name="Images")
    expect(grid.get_by_role("option")).to_have_count(4)
    grid.get_by_role("option").first.focus()
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("s")
    page.keyboard.press("2")
    expect(grid.get_by_role("option").nth(3)).to_contain_text("green")
    expect(grid).not_to_contain_text("null")
    shoot(page, "label")

    with live.client() as client:
        images = client.get("/projects/shapes/images").json()["images"]
    assert [image["labels"] for image in images] == [["red"], ["green"], [], ["green"]]


def test_select_many_and_assign_in_one_action(open_ui: Any, live: Any) -> None:
    with live.client() as client:
        client.post("/projects", json={"name": "Batch", "classes": ["a", "b"]})
        files = [("files", (f"b{n}.png", imagegen.png(f"batch{n}"))) for n in range(5)]
        assert client.post("/projects/batch/images", files=files).status_code == 200
    page = open_ui("#/p/batch/label")
    options = page.get_by_role("listbox", name="Images").get_by_role("option")
    options.nth(0).click()
    options.nth(2).click()
    options.nth(4).click()
    page.get_by_label("Class to assign").select_option("b")
    page.get_by_role("button", name="Assign to selected").click()

    expect(options.nth(4)).to_contain_text("b")
    with live.client() as client:
        labelled = client.get("/projects/batch/images?label=b").json()
    assert labelled["total"] == 3


def test_accept_or_correct_suggested_labels(open_ui: Any, live: Any) -> None:
    with live.client() as client:
        client.post("/projects", json={"name": "Fruit", "classes": ["ripe", "green"]})
        files = [("files", (f"f{n}.png", imagegen.png(f"fruit{n}"))) for n in range(4)]
        client.post("/projects/fruit/images", files=files)
        ids = [
            image["id"]
            for image in client.get("/projects/fruit/images").json()["images"]
        ]
    project = live.workspace.project("fruit")
    for image_id, label in zip(ids[:3], ["ripe", "green", "ripe"], strict=True):
        suggest(project, image_id, [label], confidence=0.9, model_id="fruit/1")
    page = open_ui("#/p/fruit/label")

    page.get_by_label("With a suggestion only").check()
    grid = page.get_by_role("listbox", name="Images")
    options = grid.get_by_role("option")
    expect(options).to_have_count(3)
    expect(options.first).to_contain_text("Suggested: ripe (90%)")
    options.first.focus()
    page.keyboard.press("a")
    expect(options.first).not_to_contain_text("Suggested")
    page.keyboard.press("1")
    expect(options.nth(1)).not_to_contain_text("Suggested")
    options.nth(2).click()
    page.get_by_role("button", name="Accept suggestions").click()
    expect(options.nth(2)).not_to_contain_text("Suggested")

    with live.client() as client:
        images = client.get("/projects/fruit/images").json()["images"]
        left = client.get("/projects/fruit/images?suggested=true").json()
    # Accepted, corrected by a number key, accepted by the button, never suggested.
    assert [image["labels"] for image in images] == [["ripe"], ["ripe"], ["ripe"], []]
    assert left["total"] == 0


def test_filters_page_through_the_grid(open_ui: Any, live: Any) -> None:
    with live.client() as client:
        client.post("/projects", json={"name": "Many", "classes": ["x"]})
        files = [("files", (f"m{n}.png", imagegen.png(f"many{n}"))) for n in range(65)]
        client.post("/projects/many/images", files=files)
    page = open_ui("#/p/many/label")

    expect(page.locator("#pager-text")).to_have_text("Images 1–60 of 65")
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#pager-text")).to_have_text("Images 61–65 of 65")
    page.get_by_label("Split").select_option("train")
    expect(page.locator("#pager-text")).to_have_text("No images match these filters.")


def test_server_errors_are_shown_as_messages(open_ui: Any, live: Any) -> None:
    with live.client() as client:
        client.post("/projects", json={"name": "Twice"})
    page = open_ui("#/projects")
    page.get_by_label("Name").fill("Twice")
    page.get_by_role("button", name="Create project").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Error:")
    expect(alert).to_contain_text("already exists")
    expect(alert).not_to_contain_text("Traceback")
    page.get_by_role("button", name="Dismiss").click()
    expect(alert).to_be_empty()


@pytest.mark.parametrize(
    "page_name", ["upload", "label", "health", "versions", "train", "deploy"]
)
def test_pages_fit_a_tablet_screen(
    open_ui: Any, page: Any, live: Any, page_name: str
) -> None:
    width = 800
    with live.client() as client:
        if client.get("/projects/wide").status_code == 404:
            client.post("/projects", json={"name": "Wide", "classes": ["a", "b"]})
            files = [
                ("files", (f"w{n}.png", imagegen.png(f"wide{n}"))) for n in range(3)
            ]
            client.post("/projects/wide/images", files=files)
    page.set_viewport_size({"width": width, "height": 900})
    open_ui(f"#/p/wide/{page_name}")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Wide")
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _file(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "image/png", "buffer": data}

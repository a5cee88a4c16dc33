"""Health, split and versions pages in a real chromium."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

import imagegen


def _project(live: Any, name: str, count: int, near_copy: bool = False) -> str:
    """A project of ``count`` pictures labelled alternately ``a`` and ``b``."""
    with live.client() as client:
        slug: str = client.post(
            "/projects", json={"name": name, "classes": ["a", "b"]}
        ).json()["slug"]
        files = [
            ("files", (f"{name}{n}.png", imagegen.png(f"{name}{n}")))
            for n in range(count)
        ]
        labels = ["a" if n % 2 == 0 else "b" for n in range(count)]
        if near_copy:
            files.append(("files", ("copy.jpg", imagegen.near_copy(f"{name}0"))))
            labels.append("b")
        response = client.post(
            f"/projects/{slug}/images", files=files, data={"labels": labels}
        )
        assert response.status_code == 200, response.text
    return slug


def test_health_shows_counts_charts_and_duplicate_groups_as_images(
    open_ui: Any, live: Any, shoot: Any
) -> None:
    slug = _project(live, "healthy", 6, near_copy=True)
    page = open_ui(f"#/p/{slug}/health")

    expect(page.get_by_role("heading", name="Health of healthy")).to_be_visible()
    chart = page.get_by_role("img", name="Bar chart of images per class and split")
    expect(chart).to_be_visible()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=chart.element_handle()
    )
    group = page.get_by_role(
        "group", name="Near-duplicates with different labels group 1"
    )
    expect(group.get_by_role("img")).to_have_count(2)
    expect(group).to_contain_text("copy.jpg")
    shoot(page, "health")


def test_split_with_the_preset_then_generate_a_version(
    open_ui: Any, live: Any, shoot: Any
) -> None:
    slug = _project(live, "splitme", 20)
    page = open_ui(f"#/p/{slug}/versions")
    page.get_by_label("Train %").fill("60")
    page.get_by_label("Test %").fill("20")
    cells = page.locator("#split-preview tr", has_text="a").locator("td")
    expect(cells).to_have_text(["6", "2", "2", "10"])
    page.get_by_role("button", name="70 / 20 / 10").click()
    expect(cells).to_have_text(["7", "2", "1", "10"])
    page.get_by_role("button", name="Apply split").click()
    expect(page.locator("#split-result")).to_contain_text("Assigned 20 images")

    page.get_by_label("Resize to").fill("64")
    page.get_by_label("Flip horizontally").check()
    page.get_by_label("Output multiplier").fill("2")
    page.get_by_role("button", name="Generate version").click()
    versions = page.get_by_role("table", name="Versions")
    expect(versions.get_by_role("row", name="v1")).to_contain_text("flip_horizontal")
    expect(versions.get_by_role("row", name="v1")).to_contain_text("×2")
    shoot(page, "versions")

    with live.client() as client:
        version = client.get(f"/projects/{slug}/versions/1").json()
    assert version["recipe"]["augmentation"]["multiplier"] == 2
    assert (
        version["counts"]["files"]["train"] == 2 * version["counts"]["images"]["train"]
    )


def test_bad_recipe_values_come_back_as_a_message(open_ui: Any, live: Any) -> None:
    slug = _project(live, "badrecipe", 4)
    page = open_ui(f"#/p/{slug}/versions")
    page.get_by_label("Resize to").fill("99999")
    page.get_by_role("button", name="Generate version").click()

    expect(page.get_by_role("alert")).to_contain_text("8192")

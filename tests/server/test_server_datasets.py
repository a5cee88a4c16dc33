"""Split, health and dataset version routes against a real server."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from server_kit import Live, png, upload

PER_CLASS = 10


@pytest.fixture
def slug(client: httpx.Client, make_project: Callable[..., str]) -> str:
    """Ten images of each of two classes, one of them uploaded twice."""
    slug = make_project(("cat", "dog"))
    files = [(f"image {seed}.png", png(seed)) for seed in range(2 * PER_CLASS)]
    labels = ["cat"] * PER_CLASS + ["dog"] * PER_CLASS
    files.append(("again.png", png(0)))
    labels.append("cat")
    assert upload(client, slug, files, labels=labels).status_code == 200
    return slug


def test_split_counts_before_and_after_a_split(client: httpx.Client, slug: str) -> None:
    before = client.get(f"/projects/{slug}/split").json()
    split = client.post(
        f"/projects/{slug}/split", json={"ratios": "60/20/20", "seed": 3}
    ).json()
    after = client.get(f"/projects/{slug}/split").json()

    assert before["rows"]["cat"]["unassigned"] == PER_CLASS
    assert split["assigned"] == 2 * PER_CLASS
    assert split["ratios"] == pytest.approx([0.6, 0.2, 0.2])
    assert split["counts"] == {"train": 12, "valid": 4, "test": 4}
    assert after["split_totals"]["unassigned"] == 0
    assert after["rows"]["dog"]["train"] == split["class_counts"]["dog"]["train"]


def test_a_split_keeps_existing_splits_unless_asked(
    client: httpx.Client, slug: str
) -> None:
    client.post(f"/projects/{slug}/split", json={"seed": 0})
    first = client.get(f"/projects/{slug}/images", params={"limit": 100}).json()

    again = client.post(f"/projects/{slug}/split", json={"seed": 99}).json()
    moved = client.post(
        f"/projects/{slug}/split", json={"seed": 99, "reassign": True}
    ).json()
    listed = client.get(f"/projects/{slug}/images", params={"limit": 100}).json()

    assert (again["assigned"], again["moved"]) == (0, 0)
    assert moved["moved"] > 0
    before = {image["id"]: image["split"] for image in first["images"]}
    after = {image["id"]: image["split"] for image in listed["images"]}
    assert before != after


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ("70/20", "'70/20' are not three numbers"),
        ("0/0/0", "add up to 0"),
        ("-1/50/50", "train=-1.0 is not accepted"),
    ],
    ids=["two-parts", "all-zero", "negative"],
)
def test_bad_ratios_are_a_400_naming_them(
    client: httpx.Client, slug: str, ratios: str, message: str
) -> None:
    response = client.post(f"/projects/{slug}/split", json={"ratios": ratios})

    assert response.status_code == 400
    assert message in response.json()["message"]


def test_images_move_to_a_split_by_hand(client: httpx.Client, slug: str) -> None:
    ids = [
        image["id"] for image in client.get(f"/projects/{slug}/images").json()["images"]
    ][:3]

    moved = client.post(
        f"/projects/{slug}/split/assign", json={"image_ids": ids, "split": "test"}
    )
    tests = client.get(f"/projects/{slug}/images", params={"split": "test"}).json()
    cleared = client.post(
        f"/projects/{slug}/split/assign", json={"image_ids": ids[:1], "split": None}
    )
    wrong = client.post(
        f"/projects/{slug}/split/assign", json={"image_ids": ids, "split": "holdout"}
    )

    assert moved.json() == {"changed": 3}
    assert {image["id"] for image in tests["images"]} == set(ids)
    assert cleared.json() == {"changed": 1}
    assert wrong.status_code == 400 and "holdout" in wrong.json()["message"]


def test_health_report_and_plots(client: httpx.Client, slug: str) -> None:
    report = client.get(f"/projects/{slug}/health").json()
    plot = client.get(f"/projects/{slug}/health/plots/class_balance.png")
    sizes = client.get(f"/projects/{slug}/health/plots/image_sizes")
    cooccurrence = client.get(f"/projects/{slug}/health/plots/label_cooccurrence")
    unknown = client.get(f"/projects/{slug}/health/plots/pie_chart")

    assert report["image_count"] == 2 * PER_CLASS
    assert report["class_split"]["class_totals"] == {"cat": 10, "dog": 10}
    assert report["imbalance"]["ratio"] == 1.0
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert sizes.headers["content-type"] == "image/png"
    # Co-occurrence is a multi-label plot.
    assert cooccurrence.status_code == 404
    assert "multi-label" in cooccurrence.json()["message"]
    assert unknown.status_code == 404 and "class_balance" in unknown.json()["message"]


def test_versions_are_created_listed_and_frozen(
    client: httpx.Client, slug: str
) -> None:
    client.post(f"/projects/{slug}/split", json={"seed": 0})
    recipe = {
        "preprocessing": {"resize": [32, 32], "resize_mode": "stretch"},
        "augmentation": {"flip_horizontal": True, "multiplier": 2},
        "seed": 5,
    }

    created = client.post(f"/projects/{slug}/versions", json=recipe)
    same = client.post(f"/projects/{slug}/versions", json=recipe).json()
    listed = client.get(f"/projects/{slug}/versions").json()
    one = client.get(f"/projects/{slug}/versions/1").json()
    manifest = client.get(f"/projects/{slug}/versions/1/manifest").json()
    missing = client.get(f"/projects/{slug}/versions/9")

    version = created.json()
    assert created.status_code == 201
    assert [item["number"] for item in listed] == [1, 2]
    assert same["manifest_hash"] == version["manifest_hash"]
    assert one["recipe"]["preprocessing"]["resize"] == [32, 32]
    train = version["counts"]["images"]["train"]
    assert version["counts"]["files"]["train"] == 2 * train
    assert len(manifest["items"]) == sum(version["counts"]["files"].values())
    assert {item["split"] for item in manifest["items"]} == {"train", "valid", "test"}
    assert missing.status_code == 404


def test_a_bad_recipe_is_a_400(client: httpx.Client, slug: str) -> None:
    response = client.post(
        f"/projects/{slug}/versions",
        json={"preprocessing": {"resize_mode": "squash"}},
    )

    assert response.status_code == 400
    assert "squash" in response.json()["message"]


def test_a_read_only_key_cannot_split_or_version(live: Live, slug: str) -> None:
    with live.client(live.read_key) as reader:
        split = reader.post(f"/projects/{slug}/split", json={})
        version = reader.post(f"/projects/{slug}/versions", json={})
        health = reader.get(f"/projects/{slug}/health")

    assert (split.status_code, version.status_code) == (403, 403)
    assert health.status_code == 200

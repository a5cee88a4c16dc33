from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image
from server_kit import Live, png, upload
from sqlalchemy import select

from pigeonhole.storage.database import ThumbnailRow

FILES = [
    ("cat1.png", png(11, (120, 60))),
    ("cat2.png", png(12)),
    ("dog1.png", png(13)),
    ("loose1.png", png(14)),
    ("loose2.png", png(15)),
]


@pytest.fixture
def slug(client: httpx.Client, make_project: Callable[..., str]) -> str:
    """A project holding FILES: two cats (train), a dog (valid), two unlabelled."""
    made = make_project(("cat", "dog"))
    response = upload(
        client,
        made,
        FILES,
        labels=["cat", "cat", "dog", "", ""],
        split=["train", "train", "valid", "", ""],
    )
    assert response.status_code == 200, response.text
    return made


def _ids(client: httpx.Client, slug: str) -> dict[str, int]:
    page = client.get(f"/projects/{slug}/images", params={"limit": 100}).json()
    return {image["filename"]: image["id"] for image in page["images"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["cat1.png", "cat2.png", "dog1.png", "loose1.png", "loose2.png"]),
        ({"split": "train"}, ["cat1.png", "cat2.png"]),
        ({"split": "val"}, ["dog1.png"]),
        ({"label": "cat"}, ["cat1.png", "cat2.png"]),
        ({"unlabelled": "true"}, ["loose1.png", "loose2.png"]),
        ({"label": "dog", "split": "train"}, []),
    ],
    ids=["all", "train", "valid-alias", "label", "unlabelled", "no-match"],
)
def test_list_filters(
    client: httpx.Client, slug: str, params: dict[str, str], expected: list[str]
) -> None:
    page = client.get(f"/projects/{slug}/images", params=params).json()

    assert [image["filename"] for image in page["images"]] == expected
    assert page["total"] == len(expected)


def test_list_pages_with_offset_and_limit(client: httpx.Client, slug: str) -> None:
    page = client.get(
        f"/projects/{slug}/images", params={"offset": 1, "limit": 2}
    ).json()

    assert page["total"] == 5
    assert (page["offset"], page["limit"]) == (1, 2)
    assert [image["filename"] for image in page["images"]] == ["cat2.png", "dog1.png"]


def test_bad_split_filter_is_a_400(client: httpx.Client, slug: str) -> None:
    response = client.get(f"/projects/{slug}/images", params={"split": "holdout"})

    assert response.status_code == 400
    assert "split 'holdout' is not one of" in response.json()["message"]


def test_get_one_image(client: httpx.Client, slug: str) -> None:
    image_id = _ids(client, slug)["cat1.png"]

    body = client.get(f"/projects/{slug}/images/{image_id}").json()

    assert body["filename"] == "cat1.png"
    assert (body["width"], body["height"]) == (120, 60)
    assert (body["split"], body["labels"]) == ("train", ["cat"])
    assert len(body["sha256"]) == 64


def test_image_of_another_project_is_404(
    client: httpx.Client, slug: str, make_project: Callable[..., str]
) -> None:
    image_id = _ids(client, slug)["cat1.png"]
    other = make_project()

    response = client.get(f"/projects/{other}/images/{image_id}")

    assert response.status_code == 404
    assert f"has no image {image_id}" in response.json()["message"]


def test_file_is_the_original_bytes(client: httpx.Client, slug: str) -> None:
    image_id = _ids(client, slug)["dog1.png"]

    response = client.get(f"/projects/{slug}/images/{image_id}/file")

    assert response.status_code == 200
    assert response.content == dict(FILES)["dog1.png"]
    assert response.headers["content-type"] == "image/png"
    assert 'filename="dog1.png"' in response.headers["content-disposition"]


def test_thumbnail_is_made_once_and_cached(
    live: Live, client: httpx.Client, slug: str
) -> None:
    image_id = _ids(client, slug)["cat1.png"]
    path = f"/projects/{slug}/images/{image_id}/thumbnail"

    first = client.get(path, params={"size": 32})
    second = client.get(path, params={"size": 32})

    assert first.status_code == 200
    assert first.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(first.content)).size == (32, 16)
    assert second.content == first.content
    assert first.headers["etag"] == second.headers["etag"]
    with live.workspace.sessions() as session:
        sizes = session.scalars(select(ThumbnailRow.size)).all()
    assert list(sizes).count(32) == 1


def test_thumbnail_does_not_enlarge(client: httpx.Client, slug: str) -> None:
    image_id = _ids(client, slug)["cat2.png"]

    response = client.get(f"/projects/{slug}/images/{image_id}/thumbnail")

    assert Image.open(io.BytesIO(response.content)).size == (48, 40)


def test_thumbnail_size_is_bounded(client: httpx.Client, slug: str) -> None:
    image_id = _ids(client, slug)["cat2.png"]

    response = client.get(
        f"/projects/{slug}/images/{image_id}/thumbnail", params={"size": 5000}
    )

    assert response.status_code == 422
    assert "query field 'size'" in response.json()["message"]


# Labels


def test_set_labels_of_one_image(client: httpx.Client, slug: str) -> None:
    image_id = _ids(client, slug)["loose1.png"]

    response = client.put(
        f"/projects/{slug}/images/{image_id}/labels", json={"labels": ["bird"]}
    )

    assert response.status_code == 200
    assert response.json()["labels"] == ["bird"]
    assert "bird" in client.get(f"/projects/{slug}").json()["classes"]


def test_single_label_project_refuses_two_labels(
    client: httpx.Client, slug: str
) -> None:
    image_id = _ids(client, slug)["loose1.png"]

    response = client.put(
        f"/projects/{slug}/images/{image_id}/labels", json={"labels": ["cat", "dog"]}
    )

    assert response.status_code == 400
    assert "is single-label" in response.json()["message"]


def test_add_and_remove_labels_in_a_multi_label_project(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project(("red", "round"), type="multi-label")
    upload(client, slug, [("apple.png", png(21))], labels=["red"])
    image_id = _ids(client, slug)["apple.png"]
    labels = f"/projects/{slug}/images/{image_id}/labels"

    added = client.post(labels, json={"label": "round"})
    removed = client.delete(f"{labels}/red")
    unknown = client.delete(f"{labels}/blue")

    assert added.json()["labels"] == ["red", "round"]
    assert removed.json()["labels"] == ["round"]
    assert unknown.status_code == 404
    assert "has no class 'blue'" in unknown.json()["message"]


def test_batch_assigns_many_images(client: httpx.Client, slug: str) -> None:
    ids = _ids(client, slug)
    loose = [ids["loose1.png"], ids["loose2.png"]]

    response = client.post(
        f"/projects/{slug}/labels", json={"image_ids": loose, "labels": ["dog"]}
    )
    dogs = client.get(f"/projects/{slug}/images", params={"label": "dog"}).json()

    assert response.json() == {"changed": 2}
    assert dogs["total"] == 3


def test_batch_remove(client: httpx.Client, slug: str) -> None:
    ids = _ids(client, slug)
    cats = [ids["cat1.png"], ids["cat2.png"]]

    response = client.post(
        f"/projects/{slug}/labels",
        json={"image_ids": cats, "action": "remove", "labels": ["cat"]},
    )

    assert response.json() == {"changed": 2}
    assert (
        client.get(f"/projects/{slug}/images", params={"unlabelled": True}).json()[
            "total"
        ]
        == 4
    )


def test_batch_with_an_unknown_image_changes_nothing(
    client: httpx.Client, slug: str
) -> None:
    ids = _ids(client, slug)

    response = client.post(
        f"/projects/{slug}/labels",
        json={"image_ids": [ids["loose1.png"], 999_999], "labels": ["cat"]},
    )

    assert response.status_code == 404
    assert "999999" in response.json()["message"]
    image = client.get(f"/projects/{slug}/images/{ids['loose1.png']}").json()
    assert image["labels"] == []


def test_batch_refuses_an_unknown_action(client: httpx.Client, slug: str) -> None:
    response = client.post(
        f"/projects/{slug}/labels",
        json={"image_ids": [1], "action": "toggle", "labels": ["cat"]},
    )

    assert response.status_code == 422
    assert "body field 'action'" in response.json()["message"]

from __future__ import annotations

from collections.abc import Callable

import httpx
from server_kit import png, upload


def test_create_get_list_and_delete_a_project(client: httpx.Client) -> None:
    created = client.post(
        "/projects",
        json={"name": "Bananas", "type": "multi-label", "classes": ["green", "ripe"]},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["slug"] == "bananas"
    assert body["type"] == "multi-label"
    assert body["classes"] == ["green", "ripe"]
    assert (body["images"], body["unlabelled"], body["versions"]) == (0, 0, [])

    assert client.get("/projects/bananas").json() == body
    assert client.get(f"/projects/{body['id']}").json()["slug"] == "bananas"
    assert "bananas" in [project["slug"] for project in client.get("/projects").json()]

    deleted = client.delete("/projects/bananas")
    assert deleted.status_code == 204
    assert client.get("/projects/bananas").status_code == 404


def test_taken_slug_is_a_conflict(client: httpx.Client) -> None:
    client.post("/projects", json={"name": "Twice"})

    response = client.post("/projects", json={"name": "Twice"})

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "'twice' already exists" in response.json()["message"]


def test_bad_project_type_is_a_400(client: httpx.Client) -> None:
    response = client.post("/projects", json={"name": "Odd", "type": "many-label"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "'many-label' is not one of" in response.json()["message"]


def test_classes_are_listed_with_counts_and_added(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project(("cat", "dog"))
    upload(client, slug, [("a.png", png(1)), ("b.png", png(2))], labels=["dog"])

    added = client.post(f"/projects/{slug}/classes", json={"names": ["dog", "fox"]})
    listed = client.get(f"/projects/{slug}/classes")

    assert added.json() == {"added": ["fox"], "classes": ["cat", "dog", "fox"]}
    assert listed.json() == [
        {"class_id": 0, "name": "cat", "images": 0},
        {"class_id": 1, "name": "dog", "images": 2},
        {"class_id": 2, "name": "fox", "images": 0},
    ]


def test_bad_class_name_is_a_400(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = client.post(f"/projects/{slug}/classes", json={"names": ["a;b"]})

    assert response.status_code == 400
    assert "without ';'" in response.json()["message"]

"""The API key routes against a real server: list, create, revoke."""

from __future__ import annotations

import httpx
import pytest
from server_kit import Live


def test_list_shows_keys_without_secrets(live: Live, client: httpx.Client) -> None:
    response = client.get("/keys")

    listed = {key["name"]: key for key in response.json()}
    assert response.status_code == 200
    assert listed["tests"]["read_only"] is False
    assert listed["viewer"]["read_only"] is True
    assert listed["tests"]["prefix"] == live.write_key[:8]
    assert live.write_key not in response.text
    assert live.read_key not in response.text
    assert "key_hash" not in response.text


def test_a_read_only_key_may_list_keys(live: Live) -> None:
    with live.client(live.read_key) as reader:
        response = reader.get("/keys")

    assert response.status_code == 200
    assert {"tests", "viewer"} <= {key["name"] for key in response.json()}


def test_created_key_works_and_is_shown_once(live: Live, client: httpx.Client) -> None:
    created = client.post("/keys", json={"name": "camera gate", "read_only": True})
    key = created.json()["key"]

    with live.client(key) as camera:
        projects = camera.get("/projects")
        refused = camera.post("/projects", json={"name": "Not allowed"})
    listed = client.get("/keys")

    assert created.status_code == 201
    assert created.json()["prefix"] == key[:8]
    assert created.json()["read_only"] is True
    assert projects.status_code == 200
    assert refused.status_code == 403
    assert key not in listed.text


def test_revoked_key_gets_401(live: Live, client: httpx.Client) -> None:
    created = client.post("/keys", json={"name": "laptop"}).json()
    with live.client(created["key"]) as laptop:
        before = laptop.get("/projects")
        revoked = client.delete(f"/keys/{created['id']}")
        after = laptop.get("/projects")
    listed = {key["id"]: key for key in client.get("/keys").json()}

    assert before.status_code == 200
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert after.status_code == 401
    assert "was revoked" in after.json()["message"]
    assert listed[created["id"]]["revoked_at"] is not None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/keys", {"name": "sneaky"}),
        ("DELETE", "/keys/1", None),
    ],
    ids=["create", "revoke"],
)
def test_a_read_only_key_cannot_change_keys(
    live: Live, method: str, path: str, body: dict[str, str] | None
) -> None:
    with live.client(live.read_key) as reader:
        response = reader.request(method, path, json=body)
        after = {key["id"]: key for key in reader.get("/keys").json()}

    assert response.status_code == 403
    assert "is read-only" in response.json()["message"]
    assert "sneaky" not in {key["name"] for key in after.values()}
    assert not after[1]["revoked"]


def test_keys_need_a_key(live: Live) -> None:
    response = httpx.get(f"{live.url}/api/v1/keys")

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "  "}, 400, "must be 1 to 100 characters"),
        ({"read_only": True}, 422, "name"),
    ],
    ids=["blank-name", "no-name"],
)
def test_bad_create_requests_are_refused(
    client: httpx.Client, body: dict[str, object], status: int, message: str
) -> None:
    response = client.post("/keys", json=body)

    assert response.status_code == status
    assert message in response.json()["message"]


def test_revoking_an_unknown_key_is_404(client: httpx.Client) -> None:
    response = client.delete("/keys/9999")

    assert response.status_code == 404
    assert "9999" in response.json()["message"]

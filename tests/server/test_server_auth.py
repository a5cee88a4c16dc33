from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from server_kit import API, Live, live_server

from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.server import ServerSettings
from pigeonhole.server.auth import (
    authenticate,
    create_key,
    hash_key,
    list_keys,
    revoke_key,
)
from pigeonhole.server.errors import AuthenticationError
from pigeonhole.workspace import Workspace

# Keys as the Python API handles them


def test_created_key_authenticates(workspace: Workspace) -> None:
    key, record = create_key(workspace, "ci", read_only=True)

    info = authenticate(workspace, key)

    assert key.startswith("ph_") and len(key) > 40
    assert record.prefix == key[:8]
    assert (info.id, info.name, info.read_only) == (record.id, "ci", True)


def test_keys_are_stored_hashed(workspace: Workspace) -> None:
    key, _ = create_key(workspace, "ci")
    workspace.close()

    stored = b"".join(
        path.read_bytes() for path in workspace.root.glob("pigeonhole.db*")
    )

    assert key.encode() not in stored
    assert key[8:].encode() not in stored
    assert hash_key(key).encode() in stored


def test_list_shows_prefixes_and_revocation(workspace: Workspace) -> None:
    _, first = create_key(workspace, "first")
    _, second = create_key(workspace, "second", read_only=True)
    revoke_key(workspace, first.prefix)

    listed = {key.name: key for key in list_keys(workspace)}

    assert listed["first"].revoked and not listed["second"].revoked
    assert listed["second"].read_only
    assert listed["second"].prefix == second.prefix


def test_revoked_key_is_refused(workspace: Workspace) -> None:
    key, record = create_key(workspace, "ci")
    revoke_key(workspace, str(record.id))

    with pytest.raises(AuthenticationError, match=r"ph_\S+\.\.\. was revoked"):
        authenticate(workspace, key)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("not-a-key", "not a Pigeonhole key"),
        ("ph_" + "A" * 43, "unknown API key ph_AAAAA"),
    ],
    ids=["foreign", "unknown"],
)
def test_bad_keys_are_refused(workspace: Workspace, key: str, message: str) -> None:
    create_key(workspace, "ci")

    with pytest.raises(AuthenticationError, match=message):
        authenticate(workspace, key)


def test_a_near_miss_of_a_real_key_is_refused(workspace: Workspace) -> None:
    key, _ = create_key(workspace, "ci")
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")

    with pytest.raises(AuthenticationError, match="unknown API key"):
        authenticate(workspace, wrong)


def test_revoke_needs_a_known_key(workspace: Workspace) -> None:
    with pytest.raises(NotFoundError, match="no API key with prefix or id 'ph_zzzzz'"):
        revoke_key(workspace, "ph_zzzzz")


def test_revoke_refuses_a_too_short_prefix(workspace: Workspace) -> None:
    create_key(workspace, "ci")

    with pytest.raises(ValidationError, match="too short"):
        revoke_key(workspace, "ph_")


def test_key_needs_a_name(workspace: Workspace) -> None:
    with pytest.raises(ValidationError, match="must be 1 to 100 characters"):
        create_key(workspace, "  ")


# Keys on the wire


def test_no_key_is_401(live: Live) -> None:
    with live.client(key="") as client:
        response = client.get("/projects")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert "needs an API key" in response.json()["message"]


@pytest.mark.parametrize(
    "key", ["wrong", "ph_" + "x" * 43], ids=["not-a-key", "unknown-key"]
)
def test_wrong_key_is_401(live: Live, key: str) -> None:
    with live.client(key=key) as client:
        response = client.get("/projects")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_revoked_key_is_401(live: Live) -> None:
    key, record = create_key(live.workspace, "short-lived")
    with live.client(key=key) as client:
        before = client.get("/projects")
        revoke_key(live.workspace, record.prefix)
        after = client.get("/projects")

    assert before.status_code == 200
    assert after.status_code == 401
    assert "revoked" in after.json()["message"]


def test_key_as_query_parameter(live: Live) -> None:
    response = httpx.get(f"{live.url}{API}/projects", params={"api_key": live.read_key})

    assert response.status_code == 200


def test_key_as_bearer(live: Live) -> None:
    response = httpx.get(
        f"{live.url}{API}/projects",
        headers={"Authorization": f"Bearer {live.read_key}"},
    )

    assert response.status_code == 200


def test_read_only_key_reads(live: Live, client: httpx.Client) -> None:
    client.post("/projects", json={"name": "Readable"})
    with live.client(key=live.read_key) as reader:
        listed = reader.get("/projects")
        one = reader.get("/projects/readable")

    assert listed.status_code == 200
    assert one.status_code == 200 and one.json()["slug"] == "readable"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/projects", {"name": "Not Allowed"}),
        ("DELETE", "/projects/guarded", None),
        ("POST", "/projects/guarded/classes", {"names": ["x"]}),
        ("POST", "/projects/guarded/split", {}),
        ("POST", "/projects/guarded/labels", {"image_ids": [1], "labels": []}),
    ],
    ids=["create", "delete", "classes", "split", "labels"],
)
def test_read_only_key_cannot_write(
    live: Live, client: httpx.Client, method: str, path: str, body: object
) -> None:
    client.post("/projects", json={"name": "Guarded"})
    with live.client(key=live.read_key) as reader:
        response = reader.request(method, path, json=body)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "read-only" in response.json()["message"]
    assert client.get("/projects/guarded").status_code == 200


def test_read_only_key_cannot_upload(live: Live, client: httpx.Client) -> None:
    client.post("/projects", json={"name": "No Uploads"})
    with live.client(key=live.read_key) as reader:
        response = reader.post(
            "/projects/no-uploads/images", files=[("files", ("a.png", b"x"))]
        )

    assert response.status_code == 403


def test_without_keys_required_no_key_is_needed(tmp_path: Path) -> None:
    settings = ServerSettings(require_keys=False)
    with live_server(tmp_path / "workspace", settings) as server:
        response = httpx.post(
            f"{server.url}{API}/projects", json={"name": "Open House"}
        )

    assert response.status_code == 201

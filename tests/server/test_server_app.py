from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from server_kit import API, Live, running

from pigeonhole import __version__
from pigeonhole.errors import (
    ConflictError,
    CorruptImageError,
    DependencyError,
    ImportFormatError,
    NotFoundError,
    PigeonholeError,
    UnsafeArchiveError,
    ValidationError,
    WeightsError,
    WorkspaceError,
)
from pigeonhole.server import ServerSettings, create_app
from pigeonhole.server.errors import (
    AuthenticationError,
    PayloadTooLargeError,
    PermissionDeniedError,
    status_of,
)
from pigeonhole.workspace import Workspace


def test_health_needs_no_key(live: Live) -> None:
    response = httpx.get(live.url + "/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"], ids=["docs", "openapi"])
def test_docs_need_no_key(live: Live, path: str) -> None:
    response = httpx.get(live.url + path)

    assert response.status_code == 200
    assert "Pigeonhole" in response.text


def test_every_other_route_needs_a_key(live: Live) -> None:
    spec = httpx.get(live.url + "/openapi.json").json()
    operations = [
        (method.upper(), path)
        for path, entries in spec["paths"].items()
        for method in entries
        if path != "/health"
    ]
    assert len(operations) >= 24

    for method, path in operations:
        assert spec["paths"][path][method.lower()]["security"], path
        url = live.url + re.sub(r"\{[^}]+\}", "1", path)
        response = httpx.request(method, url)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/no-such-route")

    assert response.status_code == 404
    assert set(response.json()) == {"message", "code"}
    assert response.json()["code"] == "not_found"


def test_unknown_project_names_the_known_ones(client: httpx.Client) -> None:
    client.post("/projects", json={"name": "Known One"})

    response = client.get("/projects/nope")

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert "no project 'nope'" in body["message"]
    assert "known-one" in body["message"]


def test_malformed_request_is_a_readable_422(client: httpx.Client) -> None:
    response = client.post("/projects", json={"type": "single-label"})

    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"message", "code"}
    assert body["code"] == "invalid_request"
    assert "body field 'name': Field required" in body["message"]


def test_invalid_json_is_named(client: httpx.Client) -> None:
    response = client.post(
        "/projects", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["message"]


def test_bad_query_value_names_the_parameter(client: httpx.Client) -> None:
    client.post("/projects", json={"name": "Query Checks"})

    response = client.get("/projects/query-checks/images", params={"limit": 0})

    assert response.status_code == 422
    assert "query field 'limit'" in response.json()["message"]


def test_unexpected_error_is_a_generic_500_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = Workspace.init(tmp_path / "workspace")
    app = create_app(workspace, settings=ServerSettings(require_keys=False))
    broken = APIRouter()

    @broken.get("/broken")
    def fail() -> None:
        raise RuntimeError("secret internals at /srv/app.py line 12")

    app.include_router(broken)
    with running(app) as url, httpx.Client(base_url=url) as client:
        response = client.get("/broken")
        after = client.get("/health")
    workspace.close()

    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text
    assert after.status_code == 200
    assert "secret internals" in caplog.text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthenticationError("x"), 401),
        (PermissionDeniedError("x"), 403),
        (NotFoundError("x"), 404),
        (ConflictError("x"), 409),
        (PayloadTooLargeError("x"), 413),
        (ValidationError("x"), 400),
        (ImportFormatError("x"), 400),
        (UnsafeArchiveError("x"), 400),
        (CorruptImageError("x"), 400),
        (WeightsError("x"), 503),
        (DependencyError("x"), 503),
        (WorkspaceError("x"), 500),
        (PigeonholeError("x"), 400),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_each_error_class_has_a_status(error: PigeonholeError, status: int) -> None:
    assert status_of(error) == status


def test_settings_refuse_a_bad_port() -> None:
    with pytest.raises(ValidationError, match="port=70000 must be from 0 to 65535"):
        ServerSettings(port=70000)


#: Paths Roboflow's clients call, which cannot move under the API prefix.
ROBOFLOW_PATHS = {
    "/infer/classification",
    "/model/registry",
    "/model/add",
    "/model/remove",
    "/model/clear",
    "/info",
    "/{project}/{number}",
}


def test_api_prefix_is_versioned(live: Live) -> None:
    spec = httpx.get(live.url + "/openapi.json").json()

    root_paths = {path for path in spec["paths"] if not path.startswith(API)}

    assert root_paths <= {"/health", *ROBOFLOW_PATHS}

"""API keys: list them, create one (shown once), revoke one.

Any key may list the keys, which never shows a key itself, only its prefix; only a
read-write key may create or revoke one. A revoked key stays listed with the time
it was revoked, as ``pigeonhole keys list`` shows it.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from pigeonhole.server import auth
from pigeonhole.server.deps import READ, WRITE, WorkspaceDep
from pigeonhole.server.schemas import KeyCreate, KeyCreated, KeyOut, error_responses

router = APIRouter(tags=["keys"], responses=error_responses(401, 403, 422))


@router.get("/keys", dependencies=[READ])
def list_keys(workspace: WorkspaceDep) -> list[KeyOut]:
    """Every key, revoked ones included, oldest first; never the key itself."""
    return [KeyOut.of(key) for key in auth.list_keys(workspace)]


@router.post(
    "/keys",
    dependencies=[WRITE],
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400),
)
def create_key(body: KeyCreate, workspace: WorkspaceDep) -> KeyCreated:
    """Creates a key; the response holds it this once, the server only its hash."""
    key, record = auth.create_key(workspace, body.name, read_only=body.read_only)
    return KeyCreated(key=key, **KeyOut.of(record).model_dump())


@router.delete("/keys/{key_id}", dependencies=[WRITE], responses=error_responses(404))
def revoke_key(key_id: int, workspace: WorkspaceDep) -> KeyOut:
    """Revokes the key: requests with it get 401 from now on. It stays listed."""
    return KeyOut.of(auth.revoke_key(workspace, str(key_id)))

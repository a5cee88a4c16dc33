"""API keys: created once, stored as a sha256 hash, checked on every request.

A key is ``ph_`` followed by 43 random URL-safe characters (256 bits). The database
keeps its first 8 characters, to find and show it, and the sha256 of the whole key,
never the key. A key is read-write or read-only; a revoked key stays listed with the
time it was revoked.

A request gives its key as the ``api_key`` query parameter (as Roboflow clients do)
or as ``Authorization: Bearer <key>``.

Example:
    >>> key, record = create_key(workspace, "labelling laptop")  # doctest: +SKIP
    >>> authenticate(workspace, key).name  # doctest: +SKIP
    'labelling laptop'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, select

from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.server.errors import AuthenticationError, PermissionDeniedError
from pigeonhole.storage.database import ApiKeyRow, utcnow
from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)

KEY_START = "ph_"
PREFIX_LENGTH = 8

_query_key = APIKeyQuery(
    name="api_key", auto_error=False, description="The API key as a query parameter."
)
_bearer_key = HTTPBearer(
    auto_error=False, description="The API key as `Authorization: Bearer <key>`."
)


@dataclass(frozen=True)
class ApiKey:
    """A stored key as listed: everything but the key itself."""

    id: int
    name: str
    prefix: str
    read_only: bool
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        """Whether the key no longer opens anything."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class KeyInfo:
    """Who a request authenticated as."""

    id: int
    name: str
    prefix: str
    read_only: bool


#: What requests are taken to be when the server runs without keys.
ANONYMOUS = KeyInfo(
    id=0, name="anonymous (keys not required)", prefix="", read_only=False
)


def hash_key(key: str) -> str:
    """The hex sha256 the database keeps instead of ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    workspace: Workspace, name: str, *, read_only: bool = False
) -> tuple[str, ApiKey]:
    """Creates a key; the key string is returned here once and never stored.

    Raises:
        ValidationError: An empty name or one over 100 characters.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError(
            f"key name {name!r} must be 1 to 100 characters, such as 'ci' or "
            "'labelling laptop'"
        )
    key = KEY_START + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        name=name,
        prefix=key[:PREFIX_LENGTH],
        key_hash=hash_key(key),
        read_only=read_only,
    )
    with workspace.sessions.begin() as session:
        session.add(row)
        session.flush()
        record = _record(row)
    logger.info("created API key %s (%s)", record.prefix, name)
    return key, record


def list_keys(workspace: Workspace) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    with workspace.sessions() as session:
        rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
        return [_record(row) for row in rows]


def revoke_key(workspace: Workspace, ref: str) -> ApiKey:
    """Revokes the key with this id, prefix (or its start) or whole key; returns it.

    Raises:
        NotFoundError: No key matches.
        ValidationError: The prefix matches several keys; give the id instead.
    """
    ref = ref.strip()
    if not ref.isdigit() and len(ref) <= len(KEY_START):
        raise ValidationError(
            f"{ref!r} is too short to pick a key; give its id or its prefix, such as "
            "'ph_x1Yz'"
        )
    with workspace.sessions.begin() as session:
        rows = list(session.scalars(_matching(ref)))
        if not rows:
            raise NotFoundError(
                f"no API key with prefix or id {ref!r}; `pigeonhole keys list` (or "
                "GET /api/v1/keys) shows them"
            )
        if len(rows) > 1:
            ids = ", ".join(str(row.id) for row in rows)
            raise ValidationError(
                f"prefix {ref!r} matches keys {ids}; revoke one by its id"
            )
        row = rows[0]
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        record = _record(row)
    logger.info("revoked API key %s (%s)", record.prefix, record.name)
    return record


def authenticate(workspace: Workspace, key: str) -> KeyInfo:
    """The key's owner, after comparing hashes in constant time.

    Raises:
        AuthenticationError: The key is malformed, unknown or revoked.
    """
    key = key.strip()
    if not key.startswith(KEY_START) or len(key) < PREFIX_LENGTH:
        raise AuthenticationError(
            "the API key is not a Pigeonhole key (they start with 'ph_'); create one "
            "with `pigeonhole keys create NAME`"
        )
    digest = hash_key(key)
    with workspace.sessions() as session:
        candidates = session.scalars(
            select(ApiKeyRow).where(ApiKeyRow.prefix == key[:PREFIX_LENGTH])
        ).all()
    for row in candidates:
        if hmac.compare_digest(row.key_hash, digest):
            if row.revoked_at is not None:
                raise AuthenticationError(
                    f"API key {row.prefix}... was revoked; ask for a new key"
                )
            return KeyInfo(row.id, row.name, row.prefix, row.read_only)
    raise AuthenticationError(
        f"unknown API key {key[:PREFIX_LENGTH]}...; check it was copied whole"
    )


def require_key(*, write: bool) -> Callable[..., KeyInfo]:
    """A FastAPI dependency: the request's key, which must allow writing if ``write``.

    Example:
        >>> @router.post("/things", dependencies=[Depends(require_key(write=True))])
        ... def make_thing() -> None: ...  # doctest: +SKIP
    """

    def dependency(
        request: Request,
        api_key: Annotated[str | None, Security(_query_key)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_key)],
    ) -> KeyInfo:
        key = bearer.credentials if bearer is not None else api_key
        return check_request_key(request, key, write=write)

    return dependency


def check_request_key(request: Request, key: str | None, *, write: bool) -> KeyInfo:
    """Who ``key`` belongs to, for a request to the app; the checks of `require_key`.

    Routes whose clients put the key in the JSON body (the Roboflow-compatible ones)
    call this themselves.

    Raises:
        AuthenticationError: No key, or an unknown or revoked one.
        PermissionDeniedError: ``write`` and a read-only key.
    """
    if not request.app.state.settings.require_keys:
        return ANONYMOUS
    if not key:
        raise AuthenticationError(
            "this route needs an API key: pass ?api_key=<key> or the header "
            "'Authorization: Bearer <key>'; create one with `pigeonhole keys "
            "create NAME`"
        )
    info = authenticate(request.app.state.workspace, key)
    if write and info.read_only:
        raise PermissionDeniedError(
            f"API key {info.prefix}... ({info.name}) is read-only and "
            f"{request.method} {request.url.path} changes data; use a read-write key"
        )
    return info


def supplied_key(
    api_key: Annotated[str | None, Security(_query_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_key)],
) -> str | None:
    """A FastAPI dependency: the key in the Bearer header or ``api_key``, unchecked.

    For routes that also accept the key in their JSON body and check it themselves
    with `check_request_key`; the docs list the two ways as for every other route.
    """
    return bearer.credentials if bearer is not None else api_key


def _matching(ref: str) -> Select[ApiKeyRow]:
    """Keys with this id, this whole key, or a prefix starting with ``ref``."""
    query = select(ApiKeyRow)
    if ref.isdigit():
        return query.where(ApiKeyRow.id == int(ref))
    if len(ref) > PREFIX_LENGTH:
        return query.where(ApiKeyRow.key_hash == hash_key(ref))
    return query.where(ApiKeyRow.prefix.startswith(ref, autoescape=True))


def _record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        read_only=row.read_only,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def ensure_first_key(workspace: Workspace) -> str | None:
    """Creates a read-write ``admin`` key when the workspace has no active key.

    Returns:
        The new key, to show once, or None when an active key already exists.
    """
    if any(not key.revoked for key in list_keys(workspace)):
        return None
    key, _ = create_key(workspace, "admin")
    return key

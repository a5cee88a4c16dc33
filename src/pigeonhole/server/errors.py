"""The server's own errors, and how every error becomes a JSON response.

The server adds three branches to the tree of :mod:`pigeonhole.errors`::

    PigeonholeError
    ├── AuthenticationError      no API key, or one that is unknown or revoked
    ├── PermissionDeniedError    a read-only key on a route that changes data
    └── PayloadTooLargeError     an uploaded file over the per-file limit

Every error response has the body ``{"message": ..., "code": ...}``: the code is
stable, for programs; the message says what failed and how to fix it, for people.
An unexpected exception gives a 500 with a generic message and is logged with its
traceback; the traceback never reaches the client.

| error | status | code |
|---|---|---|
| AuthenticationError | 401 | ``unauthorized`` |
| PermissionDeniedError | 403 | ``forbidden`` |
| NotFoundError | 404 | ``not_found`` |
| ConflictError | 409 | ``conflict`` |
| PayloadTooLargeError, a request body over the limit | 413 | ``payload_too_large`` |
| ValidationError, ImportFormatError, ImageError | 400 | the error's ``code`` |
| a malformed request (bad JSON, missing field) | 422 | ``invalid_request`` |
| WeightsError, DependencyError | 503 | ``weights_error``, ``dependency_error`` |
| WorkspaceError, anything unexpected | 500 | ``workspace_error``, ``internal_error`` |
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeonhole.errors import (
    ConflictError,
    DependencyError,
    ImageError,
    ImportFormatError,
    NotFoundError,
    PigeonholeError,
    ValidationError,
    WeightsError,
    WorkspaceError,
)

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = (
    "the server failed unexpectedly; the server log has the details, and retrying "
    "will not help until the cause is fixed"
)


class AuthenticationError(PigeonholeError):
    """No API key was given, or the key is unknown or revoked."""

    code = "unauthorized"


class PermissionDeniedError(PigeonholeError):
    """The key may not do this, such as a read-only key changing data."""

    code = "forbidden"


class PayloadTooLargeError(PigeonholeError):
    """An uploaded file is larger than the server accepts."""

    code = "payload_too_large"


STATUS_BY_ERROR: dict[type[PigeonholeError], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    ValidationError: 400,
    ImportFormatError: 400,
    ImageError: 400,
    WeightsError: 503,
    DependencyError: 503,
    WorkspaceError: 500,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_of(error: PigeonholeError) -> int:
    """The HTTP status for ``error``: that of its nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def error_response(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON body every error response has."""
    return JSONResponse(
        {"message": message, "code": code}, status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Registers the handlers that turn errors into JSON responses."""
    # Starlette types a handler as taking any Exception; ours each take one kind.
    handlers: dict[type[Exception], Any] = {
        PigeonholeError: _pigeonhole_error,
        HTTPException: _http_error,
        RequestValidationError: _invalid_request,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
    app.add_middleware(UnexpectedErrorMiddleware)


async def _pigeonhole_error(request: Request, error: PigeonholeError) -> JSONResponse:
    status = status_of(error)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, str(error), error.code, headers)


async def _http_error(_request: Request, error: HTTPException) -> JSONResponse:
    code = _CODE_BY_STATUS.get(error.status_code, "http_error")
    return error_response(error.status_code, str(error.detail), code, error.headers)


async def _invalid_request(
    _request: Request, error: RequestValidationError
) -> JSONResponse:
    problems = [_describe(problem) for problem in error.errors()]
    message = "invalid request: " + "; ".join(problems[:10])
    return error_response(422, message, "invalid_request")


def _describe(problem: dict[str, Any]) -> str:
    """One validation problem as ``where name: what``."""
    location = [str(part) for part in problem.get("loc", ())]
    where, path = (location[0], location[1:]) if location else ("request", [])
    name = ".".join(path)
    place = f"{where} field {name!r}" if name else where
    if where == "body" and problem.get("type") == "json_invalid":
        return f"the body is not valid JSON ({problem.get('ctx', {}).get('error')})"
    return f"{place}: {problem.get('msg', 'invalid')}"


def size_text(limit: int) -> str:
    """A byte count for messages, also in MiB when it is a whole number of them."""
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB ({limit:,} bytes)"
    return f"{limit:,} bytes"


class UnexpectedErrorMiddleware:
    """Answers an unexpected exception with a generic 500 and logs its traceback.

    Starlette's own last-resort handler logs the exception and then re-raises it for
    the server to log again; this middleware logs it once and ends the request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, INTERNAL_MESSAGE, "internal_error")
            await response(scope, receive, send)

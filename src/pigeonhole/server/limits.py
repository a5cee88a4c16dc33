"""The request body limit, answered with the server's JSON 413.

A request that declares a longer body than the limit is refused before any of it is
read; one that sends more than it declared, or streams without a length, is cut off
the moment it passes the limit. FastAPI has a limit of its own, but it answers a
declared oversize body in plain text, and every error here is JSON.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeonhole.server.errors import error_response, size_text


def too_large_message(limit: int) -> str:
    """What a client is told when its request body is over ``limit`` bytes."""
    return (
        f"the request body is larger than the limit of {size_text(limit)}; send "
        "fewer or smaller files per request"
    )


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with a 413.

    Args:
        app: The application to protect.
        max_bytes: The largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            response = error_response(
                413, too_large_message(self.max_bytes), "payload_too_large"
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException from the body on to the
                    # handlers, which answer with the JSON 413.
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, counted, send)


def _declared_length(scope: Scope) -> int:
    try:
        return int(Headers(scope=scope).get("content-length", "0"))
    except ValueError:
        return 0

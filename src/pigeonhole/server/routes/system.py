"""``GET /health``: whether the server is up, without a key."""

from __future__ import annotations

from fastapi import APIRouter

from pigeonhole import __version__
from pigeonhole.server.schemas import ServiceHealth

router = APIRouter(tags=["system"])


@router.get("/health")
def service_health() -> ServiceHealth:
    """The server is up; needs no key (for load balancers and probes)."""
    return ServiceHealth(status="ok", version=__version__)

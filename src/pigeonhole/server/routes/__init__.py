"""The routers, one module per noun, each exposing ``router``.

Own routes live under :data:`API_PREFIX`; root routes (``/health``, and later the
Roboflow-compatible ones, whose paths other clients fix) under no prefix. A new
router plugs in by being added to :data:`API_ROUTERS` or :data:`ROOT_ROUTERS`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from pigeonhole.server.routes import (
    health,
    images,
    keys,
    labels,
    models,
    predictions,
    projects,
    roboflow,
    splits,
    system,
    training,
    uploads,
    versions,
)

API_PREFIX = "/api/v1"

#: Routers mounted under :data:`API_PREFIX`, in the order the docs list them.
API_ROUTERS: tuple[APIRouter, ...] = (
    projects.router,
    images.router,
    uploads.router,
    labels.router,
    splits.router,
    health.router,
    versions.router,
    training.router,
    models.router,
    predictions.router,
    keys.router,
)

#: Routers mounted at the root. The Roboflow-compatible one holds the catch-all
#: ``POST /{project}/{n}``, so it comes after every other root router.
ROOT_ROUTERS: tuple[APIRouter, ...] = (system.router,)


def include_routes(app: FastAPI) -> None:
    """Mounts every router on ``app``."""
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(roboflow.router)

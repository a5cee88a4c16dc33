"""Builds the FastAPI application that serves one workspace.

Example:
    >>> import uvicorn
    >>> settings = ServerSettings(port=8000)
    >>> app = create_app(Workspace.open("ws"), settings=settings)  # doctest: +SKIP
    >>> uvicorn.run(app, host=settings.host, port=settings.port)  # doctest: +SKIP
"""

from __future__ import annotations

from fastapi import FastAPI

from pigeonhole import __version__
from pigeonhole.server.errors import install_error_handlers
from pigeonhole.server.limits import BodyLimitMiddleware
from pigeonhole.server.predicting import PredictionService
from pigeonhole.server.predictionlog import PredictionLog
from pigeonhole.server.routes import include_routes
from pigeonhole.server.serving import LoadedModels
from pigeonhole.server.settings import ServerSettings
from pigeonhole.server.webhooks import WebhookSender
from pigeonhole.server.worker import TrainingWorker
from pigeonhole.webui import mount_webui
from pigeonhole.workspace import Workspace

DESCRIPTION = """
Import, label, split and version image datasets of a Pigeonhole workspace.

**Keys.** Every route but `/health` and these docs needs an API key, given as the
`api_key` query parameter or as `Authorization: Bearer <key>`. Create one with
`pigeonhole keys create NAME` (add `--read-only` for a key that cannot change data).

**Errors** have the body `{"message": ..., "code": ...}`: the code is stable, the
message says what to fix.
"""


def create_app(workspace: Workspace, *, settings: ServerSettings) -> FastAPI:
    """The application serving ``workspace``.

    Args:
        workspace: An open workspace; the caller closes it after the server stops.
        settings: Limits and whether keys are required.

    Returns:
        A FastAPI app with the routes of :mod:`pigeonhole.server.routes`, JSON errors
        and OpenAPI docs at ``/docs``.
    """
    app = FastAPI(
        title="Pigeonhole",
        version=__version__,
        description=DESCRIPTION,
    )
    app.state.workspace = workspace
    app.state.settings = settings
    models = LoadedModels(workspace, capacity=settings.loaded_models)
    app.state.predictions = PredictionService(
        models,
        batch_window_ms=settings.batch_window_ms,
        max_batch_images=settings.max_batch_images,
    )
    if settings.record_predictions:
        log = PredictionLog(workspace, keep_images=settings.record_images)
        app.state.predictions.observers.append(log.record)
    app.state.webhooks = WebhookSender(workspace)
    app.state.predictions.observers.append(app.state.webhooks.prediction)
    app.state.worker = _training_worker(workspace, settings)
    app.state.worker.on_run_ended = app.state.webhooks.run_ended
    app.router.add_event_handler("shutdown", app.state.worker.stop)
    app.router.add_event_handler("shutdown", app.state.webhooks.stop)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    include_routes(app)
    mount_webui(app)
    return app


def _training_worker(workspace: Workspace, settings: ServerSettings) -> TrainingWorker:
    """The worker for training runs; a new server first fails the runs a previous
    one left queued or running (nothing else would ever finish them)."""
    if settings.start_worker:
        from pigeonhole.training.runs import fail_interrupted_runs

        fail_interrupted_runs(workspace)
    return TrainingWorker(workspace.root, workspace.database_url)

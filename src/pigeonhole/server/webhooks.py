"""Webhooks: a project's URLs receive a JSON event per prediction and per ended run.

A webhook may narrow prediction events to some top classes (``classes``) and to
answers below a confidence (``below_confidence``, such as "tell me when the model
is unsure"), and may turn either kind of event off.

Delivery never blocks an answer: the request only puts the event on a queue, and
one background thread looks up the project's webhooks and POSTs the JSON, with a
time limit per attempt and up to `ATTEMPTS` attempts, waiting longer after each
failure (`BACKOFF_S` doubled each time). A URL that keeps failing is logged and the
event dropped; events are not kept across restarts.

Events::

    {"event": "prediction", "project": "bananas", "model_id": "bananas/3",
     "inference_id": ..., "time": ..., "top": "ripe", "confidence": 0.93,
     "predicted_classes": ["ripe"], "image_sha256": ...}
    {"event": "run.ended", "project": "bananas", "run": {...RunInfo...}}

Example:
    >>> sender = WebhookSender(workspace)  # doctest: +SKIP
    >>> service.observers.append(sender.prediction)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.project import Project
from pigeonhole.server.predicting import ServedPrediction
from pigeonhole.storage.database import ProjectRow, WebhookRow
from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)

#: Delivery attempts per event and webhook.
ATTEMPTS = 4
#: Seconds to wait after the first failed attempt; doubled after each next one.
BACKOFF_S = 0.5
#: Most queued events the delivery thread takes (and looks up hooks for) at once.
DRAIN_LIMIT = 256
#: Seconds one attempt may take.
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Webhook:
    """A registered webhook."""

    id: int
    project: str
    url: str
    classes: list[str]
    below_confidence: float | None
    on_predictions: bool
    on_runs: bool
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return self.__dict__ | {"created_at": self.created_at.isoformat()}

    def wants(self, event: dict[str, Any]) -> bool:
        """Whether this webhook receives ``event``."""
        if event["event"] != "prediction":
            return self.on_runs
        if not self.on_predictions:
            return False
        if self.classes and event["top"] not in self.classes:
            return False
        below = self.below_confidence
        return below is None or event["confidence"] < below


def add_webhook(
    project: Project,
    url: str,
    *,
    classes: list[str] | None = None,
    below_confidence: float | None = None,
    on_predictions: bool = True,
    on_runs: bool = True,
) -> Webhook:
    """Registers ``url`` for the project's events.

    Raises:
        ValidationError: A URL that is not http(s), or a confidence outside 0 to 1.
    """
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
        raise ValidationError(
            f"webhook URL {url!r} must be an http:// or https:// URL of at most "
            "2000 characters"
        )
    if below_confidence is not None and not 0 < below_confidence <= 1:
        raise ValidationError(
            f"below_confidence={below_confidence} must be above 0 and at most 1"
        )
    with project.workspace.sessions.begin() as session:
        row = WebhookRow(
            project_id=project.id,
            url=url,
            classes=list(classes or []),
            below_confidence=below_confidence,
            on_predictions=on_predictions,
            on_runs=on_runs,
        )
        session.add(row)
        session.flush()
        return _webhook(project.slug, row)


def list_webhooks(project: Project) -> list[Webhook]:
    """The project's webhooks, oldest first."""
    with project.workspace.sessions() as session:
        rows = session.scalars(
            select(WebhookRow)
            .where(WebhookRow.project_id == project.id)
            .order_by(WebhookRow.id)
        )
        return [_webhook(project.slug, row) for row in rows]


def remove_webhook(project: Project, webhook_id: int) -> None:
    """Removes a webhook.

    Raises:
        NotFoundError: The project has no such webhook.
    """
    with project.workspace.sessions.begin() as session:
        row = session.get(WebhookRow, webhook_id)
        if row is None or row.project_id != project.id:
            raise NotFoundError(
                f"project {project.slug!r} has no webhook {webhook_id}; list them "
                f"with `pigeonhole webhooks list {project.slug}`"
            )
        session.delete(row)


def prediction_event(served: ServedPrediction) -> dict[str, Any]:
    """The JSON event for one served prediction."""
    prediction = served.prediction
    return {
        "event": "prediction",
        "project": served.model_id.split("/")[0],
        "model_id": served.model_id,
        "inference_id": served.inference_id,
        "time": served.created_at.isoformat(),
        "top": prediction.top,
        "confidence": prediction.confidence,
        "predicted_classes": list(prediction.predicted_classes),
        "image_sha256": served.image_sha256,
    }


class WebhookSender:
    """Delivers events from a queue in one background thread.

    Args:
        workspace: Where the webhooks are registered.
        attempts: Attempts per event and webhook.
        backoff_s: Wait after the first failure, doubled after each next one.
        timeout_s: Time limit of one attempt.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.workspace = workspace
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._client = httpx.Client(timeout=timeout_s)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def prediction(self, served: ServedPrediction) -> None:
        """Queues the event of a served prediction (a `PredictionService` observer)."""
        self.send(prediction_event(served))

    def run_ended(self, run_id: int) -> None:
        """Queues the event of a run that ended."""
        from pigeonhole.training.runs import get_run

        info = get_run(self.workspace, run_id)
        event = {"event": "run.ended", "project": info.project, "run": info.to_dict()}
        self.send(event)

    def send(self, event: dict[str, Any]) -> None:
        """Queues ``event`` for the webhooks of ``event["project"]``."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._deliver_all, name="pigeonhole-webhooks", daemon=True
                )
                self._thread.start()
        self._events.put(event)

    def stop(self) -> None:
        """Delivers what is queued, then ends the thread."""
        thread = self._thread
        if thread is not None:
            self._events.put(None)
            thread.join(timeout=30)
        self._client.close()

    def _deliver_all(self) -> None:
        while events := self._next_events():
            # One lookup per project for all the events queued meanwhile: under
            # load, a query per prediction would compete with the predictions.
            hooks: dict[str, list[Webhook]] = {}
            for event in events:
                slug = event["project"]
                if slug not in hooks:
                    try:
                        hooks[slug] = self._hooks(slug)
                    except Exception:
                        logger.exception("could not read the webhooks of %s", slug)
                        hooks[slug] = []
                for hook in hooks[slug]:
                    if hook.wants(event):
                        self._deliver(hook, event)

    def _next_events(self) -> list[dict[str, Any]]:
        """Waits for an event, then takes those queued behind it; empty at the end."""
        events: list[dict[str, Any]] = []
        event = self._events.get()
        while event is not None:
            events.append(event)
            if len(events) >= DRAIN_LIMIT:
                return events
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
        # The stop marker: deliver what came before it, then end.
        if events:
            self._events.put(None)
        return events

    def _hooks(self, slug: str) -> list[Webhook]:
        with self.workspace.sessions() as session:
            project_id = session.scalar(
                select(ProjectRow.id).where(ProjectRow.slug == slug)
            )
            if project_id is None:
                return []
            rows = session.scalars(
                select(WebhookRow).where(WebhookRow.project_id == project_id)
            )
            return [_webhook(slug, row) for row in rows]

    def _deliver(self, hook: Webhook, event: dict[str, Any]) -> None:
        wait = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.post(hook.url, json=event)
                if response.status_code < 400:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt < self.attempts:
                time.sleep(wait)
                wait *= 2
        logger.warning(
            "webhook %d (%s) failed %d times, last with %s; event %s dropped",
            hook.id,
            hook.url,
            self.attempts,
            problem,
            event["event"],
        )


def _webhook(slug: str, row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        project=slug,
        url=row.url,
        classes=list(row.classes or []),
        below_confidence=row.below_confidence,
        on_predictions=row.on_predictions,
        on_runs=row.on_runs,
        created_at=row.created_at,
    )

"""The prediction log: every served prediction, queryable by class and time.

Each prediction the server answers with is one ``predictions`` row: the model, the
time, the top class (None for "no result"), its confidence, the predicted classes
and the image's sha256; with ``record_images`` the image bytes go into the blob
store too, so that the image can be sent back to its project later, as an
unlabelled image carrying the prediction as a suggested label.

Example:
    >>> log = PredictionLog(workspace, keep_images=True)  # doctest: +SKIP
    >>> service.observers.append(log.record)  # doctest: +SKIP
    >>> hourly_counts(project, since=midnight)  # doctest: +SKIP
    [HourCount(hour=datetime(...), top='truck', count=41), ...]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select

from pigeonhole.datasets.suggestions import suggest
from pigeonhole.errors import ConflictError, NotFoundError, ValidationError
from pigeonhole.project import ImageRecord, Project
from pigeonhole.server.predicting import ServedPrediction
from pigeonhole.storage.database import PredictionRow, ProjectRow
from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)

#: What the log calls "no result" when filtering by class.
NO_RESULT = ""


@dataclass(frozen=True)
class LoggedPrediction:
    """One row of the prediction log."""

    id: int
    model_id: str
    inference_id: str
    top: str | None
    confidence: float
    predicted_classes: list[str]
    image_sha256: str
    image_stored: bool
    width: int
    height: int
    sent_image_id: int | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; the time as ISO 8601 text."""
        return self.__dict__ | {"created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class HourCount:
    """How many predictions of one top class fell in one hour."""

    hour: datetime
    top: str | None
    count: int


class PredictionLog:
    """Writes served predictions to the log; used as a `PredictionService` observer.

    Args:
        workspace: The workspace whose database holds the log.
        keep_images: Whether to store each image's bytes in the blob store.
    """

    def __init__(self, workspace: Workspace, *, keep_images: bool) -> None:
        self.workspace = workspace
        self.keep_images = keep_images
        self._project_ids: dict[str, int] = {}

    def record(self, served: ServedPrediction) -> None:
        """Adds ``served`` to the log."""
        project_id = self._project_id(served.model_id.split("/")[0])
        if project_id is None:
            return
        if self.keep_images:
            self.workspace.blobs.put(served.image.data, served.image_sha256)
        prediction = served.prediction
        with self.workspace.sessions.begin() as session:
            session.add(
                PredictionRow(
                    project_id=project_id,
                    model_id=served.model_id,
                    inference_id=served.inference_id,
                    top=prediction.top,
                    confidence=prediction.confidence,
                    predicted_classes=list(prediction.predicted_classes),
                    image_sha256=served.image_sha256,
                    image_stored=self.keep_images,
                    width=prediction.width,
                    height=prediction.height,
                    created_at=served.created_at,
                )
            )

    def _project_id(self, slug: str) -> int | None:
        if slug not in self._project_ids:
            with self.workspace.sessions() as session:
                found = session.scalar(
                    select(ProjectRow.id).where(ProjectRow.slug == slug)
                )
            if found is None:
                return None
            self._project_ids[slug] = found
        return self._project_ids[slug]


def query(
    project: Project,
    *,
    top: str | None = None,
    model_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[LoggedPrediction]:
    """Logged predictions of ``project``, newest first.

    Args:
        project: The project whose models made the predictions.
        top: Only this top class; ``""`` for predictions with no result.
        model_id: Only this model (``<slug>/<n>``).
        since: Only at or after this time.
        until: Only before this time.
        offset: Rows to skip.
        limit: Rows to return at most.
    """
    statement = _filtered(
        select(PredictionRow), project, top, model_id, since, until
    ).order_by(PredictionRow.id.desc())
    with project.workspace.sessions() as session:
        rows = session.scalars(statement.offset(offset).limit(limit))
        return [_logged(row) for row in rows]


def hourly_counts(
    project: Project,
    *,
    model_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[HourCount]:
    """Predictions per top class per hour (UTC), oldest hour first."""
    statement = _filtered(
        select(PredictionRow.created_at, PredictionRow.top),
        project,
        None,
        model_id,
        since,
        until,
    )
    counts: dict[tuple[datetime, str | None], int] = {}
    with project.workspace.sessions() as session:
        for created_at, top in session.execute(statement):
            hour = created_at.replace(minute=0, second=0, microsecond=0)
            counts[hour, top] = counts.get((hour, top), 0) + 1
    return [
        HourCount(hour, top, count)
        for (hour, top), count in sorted(
            counts.items(), key=lambda item: (item[0][0], item[0][1] or "")
        )
    ]


def count(project: Project) -> int:
    """How many predictions of ``project`` the log holds."""
    with project.workspace.sessions() as session:
        found = session.scalar(
            select(func.count()).where(PredictionRow.project_id == project.id)
        )
    return int(found or 0)


def get(project: Project, prediction_id: int) -> LoggedPrediction:
    """One logged prediction of ``project``.

    Raises:
        NotFoundError: No such prediction in this project's log.
    """
    with project.workspace.sessions() as session:
        row = session.get(PredictionRow, prediction_id)
        if row is None or row.project_id != project.id:
            raise NotFoundError(
                f"project {project.slug!r} has no logged prediction {prediction_id}"
            )
        return _logged(row)


def send_to_project(project: Project, prediction_id: int) -> ImageRecord:
    """Adds the logged prediction's image to ``project``, unlabelled, with the
    prediction as its suggested label (see `pigeonhole.datasets.suggestions`);
    returns the image.

    Raises:
        NotFoundError: No such prediction.
        ConflictError: The image was not kept (the server ran without
            ``record_images``), or its blob is gone.
    """
    logged = get(project, prediction_id)
    blobs = project.workspace.blobs
    if not logged.image_stored or not blobs.has(logged.image_sha256):
        raise ConflictError(
            f"prediction {prediction_id} kept no image, so there is nothing to send; "
            "run the server with --record-images to keep predicted images"
        )
    data = blobs.get(logged.image_sha256)
    record = project.add_image(data, filename=f"prediction-{prediction_id}")
    suggest(
        project,
        record.id,
        logged.predicted_classes or ([logged.top] if logged.top else []),
        confidence=logged.confidence,
        model_id=logged.model_id,
        prediction_id=logged.id,
    )
    with project.workspace.sessions.begin() as session:
        prediction = session.get(PredictionRow, prediction_id)
        if prediction is not None:
            prediction.sent_image_id = record.id
    return record


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time from a query parameter; naive times are taken as UTC.

    Raises:
        ValidationError: Not an ISO 8601 time.
    """
    if value is None or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{name}={value!r} is not an ISO 8601 time such as 2026-12-03T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _filtered(
    statement: Any,
    project: Project,
    top: str | None,
    model_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    statement = statement.where(PredictionRow.project_id == project.id)
    if top is not None:
        statement = statement.where(
            PredictionRow.top.is_(None)
            if top == NO_RESULT
            else PredictionRow.top == top
        )
    if model_id:
        statement = statement.where(PredictionRow.model_id == model_id)
    if since is not None:
        statement = statement.where(PredictionRow.created_at >= since)
    if until is not None:
        statement = statement.where(PredictionRow.created_at < until)
    return statement


def _logged(row: PredictionRow) -> LoggedPrediction:
    return LoggedPrediction(
        id=row.id,
        model_id=row.model_id,
        inference_id=row.inference_id,
        top=row.top,
        confidence=row.confidence,
        predicted_classes=list(row.predicted_classes or []),
        image_sha256=row.image_sha256,
        image_stored=row.image_stored,
        width=row.width,
        height=row.height,
        sent_image_id=row.sent_image_id,
        created_at=row.created_at,
    )

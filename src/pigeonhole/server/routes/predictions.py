"""The prediction log and webhooks of a project.

The log holds every prediction the server answered with (unless the server runs
with ``--no-log``): query it by class and time, count it per class per hour, and
send a logged image back to the project as an unlabelled image with the prediction
as its suggested label, which a person then accepts or corrects.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from pigeonhole.datasets.suggestions import accept_suggestions, suggestions_of
from pigeonhole.server import predictionlog, webhooks
from pigeonhole.server.deps import READ, WRITE, ProjectDep
from pigeonhole.server.schemas import (
    Changed,
    ImageOut,
    SuggestionOut,
    SuggestionsAccept,
    error_responses,
)

router = APIRouter(tags=["predictions"], responses=error_responses(401, 403, 404, 422))

_TIME = "ISO 8601 time, such as 2026-12-03T08:00:00Z (UTC when no zone is given)."


@router.get("/projects/{project}/predictions", dependencies=[READ])
def list_predictions(
    project: ProjectDep,
    top: Annotated[
        str | None, Query(alias="class", description="Top class; empty: no result.")
    ] = None,
    model_id: Annotated[str | None, Query(description="Such as bananas/3.")] = None,
    since: Annotated[str | None, Query(description=_TIME)] = None,
    until: Annotated[str | None, Query(description=_TIME)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Logged predictions, newest first, filtered by class, model and time."""
    found = predictionlog.query(
        project,
        top=top,
        model_id=model_id,
        since=predictionlog.parse_time(since, "since"),
        until=predictionlog.parse_time(until, "until"),
        offset=offset,
        limit=limit,
    )
    return [logged.to_dict() for logged in found]


@router.get("/projects/{project}/predictions/counts", dependencies=[READ])
def prediction_counts(
    project: ProjectDep,
    model_id: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query(description=_TIME)] = None,
    until: Annotated[str | None, Query(description=_TIME)] = None,
) -> list[dict[str, Any]]:
    """Predictions per top class per hour (UTC); ``class`` null means no result."""
    counts = predictionlog.hourly_counts(
        project,
        model_id=model_id,
        since=predictionlog.parse_time(since, "since"),
        until=predictionlog.parse_time(until, "until"),
    )
    return [
        {"hour": item.hour.isoformat(), "class": item.top, "count": item.count}
        for item in counts
    ]


@router.get("/projects/{project}/predictions/{prediction_id}", dependencies=[READ])
def get_prediction(project: ProjectDep, prediction_id: int) -> dict[str, Any]:
    """One logged prediction."""
    return predictionlog.get(project, prediction_id).to_dict()


@router.post(
    "/projects/{project}/predictions/{prediction_id}/send-to-project",
    dependencies=[WRITE],
    responses=error_responses(409),
)
def send_to_project(project: ProjectDep, prediction_id: int) -> dict[str, Any]:
    """Adds the logged image to the project, unlabelled, with the prediction as
    its suggested label (needs a server that keeps images: ``--record-images``)."""
    record = predictionlog.send_to_project(project, prediction_id)
    image = ImageOut.read(project, record.id)
    suggestion = image.suggestion.model_dump(mode="json") if image.suggestion else None
    return {"image": image.model_dump(mode="json"), "suggestion": suggestion}


@router.get("/projects/{project}/suggestions", dependencies=[READ])
def list_suggestions(project: ProjectDep) -> dict[str, SuggestionOut]:
    """Suggested labels by image id (the images route filters by ``suggested``)."""
    found = suggestions_of(project)
    return {str(image_id): SuggestionOut.of(item) for image_id, item in found.items()}


@router.post(
    "/projects/{project}/suggestions/accept",
    dependencies=[WRITE],
    responses=error_responses(400),
)
def accept(project: ProjectDep, body: SuggestionsAccept) -> Changed:
    """Gives the listed images their suggested labels and clears the suggestions;
    ``changed`` counts the images that had one. To correct a suggestion instead,
    set the image's labels: that clears it too."""
    return Changed(changed=accept_suggestions(project, body.image_ids))


# Webhooks


class WebhookCreate(BaseModel):
    """A URL to receive the project's events."""

    url: str = Field(examples=["https://example.com/hooks/pigeonhole"])
    classes: list[str] = Field(
        default_factory=list, description="Only predictions of these top classes."
    )
    below_confidence: float | None = Field(
        None, description="Only predictions whose confidence is below this."
    )
    on_predictions: bool = True
    on_runs: bool = Field(True, description="Also when a training run ends.")


@router.get("/projects/{project}/webhooks", dependencies=[READ])
def list_webhooks(project: ProjectDep) -> list[dict[str, Any]]:
    """The project's webhooks."""
    return [hook.to_dict() for hook in webhooks.list_webhooks(project)]


@router.post(
    "/projects/{project}/webhooks",
    dependencies=[WRITE],
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400),
)
def add_webhook(body: WebhookCreate, project: ProjectDep) -> dict[str, Any]:
    """Registers a webhook."""
    hook = webhooks.add_webhook(project, **body.model_dump())
    return hook.to_dict()


@router.delete(
    "/projects/{project}/webhooks/{webhook_id}",
    dependencies=[WRITE],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def remove_webhook(project: ProjectDep, webhook_id: int) -> Response:
    """Removes a webhook."""
    webhooks.remove_webhook(project, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

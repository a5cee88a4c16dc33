"""Trained models: list, metadata and metrics, plots, delete, and predict.

``POST .../models/{n}/predict`` answers Pigeonhole's own `Prediction` JSON (ranked
classes, calibrated confidences, no result below the threshold); the
Roboflow-compatible routes answer Roboflow's shapes for the same predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from pigeonhole.errors import NotFoundError
from pigeonhole.server.deps import READ, WRITE, ProjectDep, SettingsDep
from pigeonhole.server.errors import PayloadTooLargeError, size_text
from pigeonhole.server.predicting import InputImage, PredictionService
from pigeonhole.server.responses import FastJSONResponse
from pigeonhole.server.schemas import error_responses
from pigeonhole.server.uploads import safe_name

router = APIRouter(tags=["models"], responses=error_responses(401, 403, 404, 422))


@router.get("/projects/{project}/models", dependencies=[READ])
def list_models(project: ProjectDep) -> list[dict[str, Any]]:
    """The project's models by number, with their metrics."""
    from pigeonhole.training.registry import list_models as listed

    return [_model_dict(model) for model in listed(project)]


@router.get("/projects/{project}/models/{number}", dependencies=[READ])
def get_model(project: ProjectDep, number: int) -> dict[str, Any]:
    """One model with its whole metadata (classes, thresholds, metrics, config)."""
    from pigeonhole.training.registry import get_model as found

    model = found(project, number)
    return _model_dict(model) | {
        "metadata": model.metadata.to_dict(),
        "plots": [path.name for path in _plots(model.path)],
    }


@router.get(
    "/projects/{project}/models/{number}/plots/{name}",
    dependencies=[READ],
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
def get_plot(project: ProjectDep, number: int, name: str) -> FileResponse:
    """A PNG plot of the model's evaluation, by file name (see ``plots``)."""
    from pigeonhole.training.registry import get_model as found

    model = found(project, number)
    plots = {path.name: path for path in _plots(model.path)}
    if name not in plots:
        shown = ", ".join(sorted(plots)) or "none"
        raise NotFoundError(
            f"model {project.slug}/{number} has no plot {name!r}; it has: {shown}"
        )
    return FileResponse(plots[name], media_type="image/png")


@router.delete(
    "/projects/{project}/models/{number}",
    dependencies=[WRITE],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def delete_model(project: ProjectDep, number: int, request: Request) -> Response:
    """Deletes the model's package and row; it is unloaded from the server."""
    from pigeonhole.training.registry import delete_model as delete

    delete(project, number)
    service: PredictionService = request.app.state.predictions
    service.models.remove(f"{project.slug}/{number}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/projects/{project}/models/{number}/predict",
    dependencies=[READ],
    responses=error_responses(400, 413),
)
async def predict(
    project: ProjectDep,
    number: int,
    request: Request,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="One or more images.")],
    confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    top_k: Annotated[int | None, Query(ge=1)] = None,
) -> FastJSONResponse:
    """Predicts every uploaded image; answers a prediction per file, in order."""
    images = []
    for upload in files:
        data = await upload.read(settings.max_upload_bytes + 1)
        name = safe_name(upload.filename)
        if len(data) > settings.max_upload_bytes:
            raise PayloadTooLargeError(
                f"file {name!r} is over the limit of "
                f"{size_text(settings.max_upload_bytes)} per file; send a smaller one"
            )
        images.append(InputImage(data, name))
    service: PredictionService = request.app.state.predictions
    served = await run_in_threadpool(
        service.predict,
        f"{project.slug}/{number}",
        images,
        confidence=confidence,
        top_k=top_k,
    )
    # Plain JSON values, sent as is (see pigeonhole.server.responses).
    return FastJSONResponse(
        [
            {
                "inference_id": one.inference_id,
                "model_id": one.model_id,
                "filename": one.image.name,
            }
            | one.prediction.to_dict()
            for one in served
        ]
    )


def _plots(folder: Path) -> list[Path]:
    return sorted((folder / "plots").glob("*.png"))


def _model_dict(model: Any) -> dict[str, Any]:
    """The model as listed: everything but its full metadata and server path."""
    data: dict[str, Any] = model.to_dict()
    data.pop("path", None)
    metadata = data.pop("metadata")
    return data | {"class_names": list(metadata["class_names"])}

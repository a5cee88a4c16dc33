"""Roboflow-compatible inference, at the paths Roboflow's clients call.

Roboflow's ``inference-sdk`` (``InferenceHTTPClient(api_url=..., api_key=...)``) and
plain HTTP calls written for a Roboflow inference server work unchanged:

- ``POST /infer/classification``: JSON ``{"model_id", "api_key", "image":
  {"type": "base64" | "url", "value": ...} or a list of them, "confidence"}``; a
  list of images gives a list of answers.
- ``POST /{project}/{n}``: the older route; key and ``confidence`` (1 or more is
  a percentage) in the query, the image as base64 in the raw body, as a multipart
  part named ``file``, or as ``?image=<url>``.
- ``GET /model/registry``, ``POST /model/add``, ``/model/remove``, ``/model/clear``
  and ``GET /info``: the client asks the registry for the model's task type before
  it predicts.

The key comes from the JSON body, the ``api_key`` query parameter or an
``Authorization: Bearer`` header. Errors are ``{"message": ...}`` (with a ``code``
beside it) and the statuses 400, 401, 403, 404 and 413.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pigeonhole import __version__
from pigeonhole.errors import ValidationError
from pigeonhole.server.auth import check_request_key, supplied_key
from pigeonhole.server.errors import PayloadTooLargeError, size_text
from pigeonhole.server.predicting import (
    InputImage,
    PredictionService,
    decode_base64,
    listing_threshold,
    roboflow_answer,
)
from pigeonhole.server.responses import FastJSONResponse
from pigeonhole.server.schemas import error_responses
from pigeonhole.server.serving import ModelRef
from pigeonhole.server.settings import ServerSettings

router = APIRouter(
    tags=["roboflow-compatible"], responses=error_responses(400, 401, 404, 413)
)

#: The server's identity, fixed per process, as ``GET /info`` reports it.
SERVER_UUID = str(uuid.uuid4())


class ImageRef(BaseModel):
    """An image inside a JSON request."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["base64", "url"] = Field(
        description="`base64`: the file's bytes base64-encoded; `url`: an http(s) URL."
    )
    value: str


class ClassificationRequest(BaseModel):
    """``POST /infer/classification``; other Roboflow fields are ignored."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_id: str = Field(examples=["bananas/3"])
    api_key: str | None = None
    image: ImageRef | list[ImageRef]
    confidence: float | None = Field(
        None, ge=0, le=1, description="Threshold replacing the model's own."
    )


class ModelRequest(BaseModel):
    """``POST /model/add`` and ``/model/remove``."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_id: str
    api_key: str | None = None


Body = TypeVar("Body", ClassificationRequest, ModelRequest)


def _service(request: Request) -> PredictionService:
    service: PredictionService = request.app.state.predictions
    return service


def _settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


#: The key from the query or the Bearer header; the body's, where given, wins.
SuppliedKey = Annotated[str | None, Depends(supplied_key)]


def _check(request: Request, key: str | None) -> None:
    check_request_key(request, key, write=False)


@router.post("/infer/classification", response_model=None)
def infer_classification(
    request: Request, key: SuppliedKey, body: ClassificationRequest | None = None
) -> FastJSONResponse:
    """Classifies one image, or a list of them (giving a list of answers)."""
    body = _required(body, request, key)
    refs = body.image if isinstance(body.image, list) else [body.image]
    names = [f"image {i}" if len(refs) > 1 else "the image" for i in range(len(refs))]
    settings = _settings(request)
    images = [
        _json_image(ref, name, settings) for ref, name in zip(refs, names, strict=True)
    ]
    answers = _answers(request, body.model_id, images, body.confidence)
    return FastJSONResponse(answers if isinstance(body.image, list) else answers[0])


@router.get("/model/registry")
def model_registry(request: Request, key: SuppliedKey) -> dict[str, Any]:
    """The loaded models with their task type and input size."""
    _check(request, key)
    return _registry(request)


@router.post("/model/add")
def model_add(
    request: Request, key: SuppliedKey, body: ModelRequest | None = None
) -> dict[str, Any]:
    """Loads a model (a no-op when loaded); answers the registry."""
    body = _required(body, request, key)
    _service(request).models.get(body.model_id)
    return _registry(request)


@router.post("/model/remove")
def model_remove(
    request: Request, key: SuppliedKey, body: ModelRequest | None = None
) -> dict[str, Any]:
    """Unloads a model; answers the registry."""
    body = _required(body, request, key)
    _service(request).models.remove(body.model_id)
    return _registry(request)


@router.post("/model/clear")
def model_clear(request: Request, key: SuppliedKey) -> dict[str, Any]:
    """Unloads every model; answers the registry."""
    _check(request, key)
    _service(request).models.clear()
    return _registry(request)


@router.get("/info")
def server_info(request: Request, key: SuppliedKey) -> dict[str, str]:
    """The server's name, version and the identity of this process."""
    _check(request, key)
    return {"name": "Pigeonhole", "version": __version__, "uuid": SERVER_UUID}


@router.post(
    "/{project}/{number:int}",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
            "required": False,
        }
    },
)
async def legacy_infer(
    project: str,
    number: int,
    request: Request,
    key: SuppliedKey,
    confidence: Annotated[
        float | None,
        Query(ge=0, le=100, description="0 to 1, or a percentage when 1 or more."),
    ] = None,
    image: Annotated[str | None, Query(description="An http(s) image URL.")] = None,
) -> FastJSONResponse:
    """The older Roboflow route: base64 body, multipart ``file`` or ``?image=<url>``."""
    _check(request, key)
    settings = _settings(request)
    if image is not None:
        data = await run_in_threadpool(_fetch, image, settings)
        name = image
    else:
        data, name = await _legacy_body(request, settings)
    if confidence is not None and confidence >= 1:
        confidence /= 100
    model_id = ModelRef(project, number).model_id
    # Prediction is CPU work: keep it off the event loop.
    answers = await run_in_threadpool(
        _answers, request, model_id, [InputImage(data, name)], confidence
    )
    return FastJSONResponse(answers[0])


def _required(body: Body | None, request: Request, key: str | None) -> Body:
    """The body, after the key check, so a request without a key gets a 401."""
    _check(request, (body.api_key if body is not None else None) or key)
    if body is None:
        raise ValidationError(
            f"{request.url.path} needs a JSON body with at least 'model_id'; see "
            "/docs for its fields"
        )
    return body


def _answers(
    request: Request,
    model_id: str,
    images: list[InputImage],
    confidence: float | None,
) -> list[dict[str, Any]]:
    """The answers as plain JSON values, which the routes send as a
    `FastJSONResponse` (see `pigeonhole.server.responses`)."""
    service = _service(request)
    served = service.predict(model_id, images, confidence=confidence)
    threshold = listing_threshold(service.models.get(model_id), confidence)
    return [roboflow_answer(one, threshold) for one in served]


def _registry(request: Request) -> dict[str, Any]:
    models = [
        {
            "model_id": summary.model_id,
            "task_type": "classification",
            "multi_label": summary.multi_label,
            "batch_size": "batch",
            "input_width": summary.input_width,
            "input_height": summary.input_height,
        }
        for summary in _service(request).models.loaded()
    ]
    return {"models": models}


def _json_image(ref: ImageRef, name: str, settings: ServerSettings) -> InputImage:
    if ref.type == "url":
        return InputImage(_fetch(ref.value, settings), ref.value)
    data = decode_base64(ref.value, name)
    _check_size(len(data), name, settings)
    return InputImage(data, name)


async def _legacy_body(request: Request, settings: ServerSettings) -> tuple[bytes, str]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=settings.max_upload_bytes)
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise ValidationError(
                "the multipart body has no file part named 'file'; send the image "
                "as 'file', as base64 in the body, or as ?image=<url>"
            )
        data = await part.read()
        name = part.filename or "file"
    else:
        body = await request.body()
        if not body.strip():
            raise ValidationError(
                "no image given: send it base64-encoded in the body, as a multipart "
                "part named 'file', or as ?image=<url>"
            )
        data, name = decode_base64(body, "the request body"), "the request body"
    _check_size(len(data), name, settings)
    return data, name


def _fetch(url: str, settings: ServerSettings) -> bytes:
    from pigeonhole.inference.fetch import fetch_image_bytes

    return fetch_image_bytes(
        url,
        max_bytes=settings.max_upload_bytes,
        timeout_s=settings.url_timeout_s,
        allow_private=settings.allow_private_urls,
    )


def _check_size(size: int, name: str, settings: ServerSettings) -> None:
    if size > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"{name} is {size:,} bytes, over the limit of "
            f"{size_text(settings.max_upload_bytes)} per image; send a smaller image"
        )

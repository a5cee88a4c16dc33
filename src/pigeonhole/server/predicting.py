"""Serving predictions: images in, predictions out, every one announced to observers.

Every route that predicts goes through `PredictionService.predict`: it takes the
model from the `LoadedModels` cache, predicts the batch of images in one call, and
hands each `ServedPrediction` to the observers (the prediction log, the webhooks).
An observer that fails is logged and never fails the request.

The Roboflow-compatible answer shapes are made here too (`roboflow_answer`), so that
the routes stay thin.

Example:
    >>> service = PredictionService(LoadedModels(workspace))  # doctest: +SKIP
    >>> image = InputImage(data, "a.jpg")  # doctest: +SKIP
    >>> served = service.predict("bananas/3", [image])  # doctest: +SKIP
    >>> served[0].prediction.top  # doctest: +SKIP
    'ripe'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pigeonhole.errors import ImageError, ValidationError
from pigeonhole.server.serving import LoadedModels, ModelRef

if TYPE_CHECKING:
    from pigeonhole.inference.predictor import Prediction, Predictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputImage:
    """One image as a request gave it.

    Attributes:
        data: The file's bytes.
        name: What messages call it: the file name, ``image 2`` or the URL.
    """

    data: bytes
    name: str


@dataclass(frozen=True)
class ServedPrediction:
    """A prediction the server answered with, as observers receive it.

    Attributes:
        inference_id: A new UUID per image, also in the answer.
        model_id: ``<project-slug>/<n>``.
        prediction: What the model said.
        image: The image it was said about.
        image_sha256: Hex sha256 of the image bytes.
        multi_label: Whether the model is multi-label.
        created_at: When the answer was made (UTC).
    """

    inference_id: str
    model_id: str
    prediction: Prediction
    image: InputImage
    image_sha256: str
    multi_label: bool
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


Observer = Callable[[ServedPrediction], None]


class PredictionService:
    """Predicts with cached models and tells observers about each prediction.

    Args:
        models: The cache models are loaded into.
    """

    def __init__(self, models: LoadedModels) -> None:
        self.models = models
        self.observers: list[Observer] = []

    def predict(
        self,
        model_id: str,
        images: Sequence[InputImage],
        *,
        confidence: float | None = None,
        top_k: int | None = None,
    ) -> list[ServedPrediction]:
        """Predicts ``images`` in one batch with model ``model_id``.

        Raises:
            ValidationError: A malformed model id, no images, or a bad argument.
            NotFoundError: No such model.
            ImageError: An image cannot be decoded; the message names it.
        """
        if not images:
            raise ValidationError("no image given; send at least one image")
        ref = ModelRef.parse(model_id).model_id
        predictor = self.models.get(ref)
        inputs: list[Any] = [image.data for image in images]
        predictions = _predict_named(predictor, inputs, images, confidence, top_k)
        multi_label = predictor.metadata.project_type.is_multi_label
        served = [
            ServedPrediction(
                inference_id=str(uuid.uuid4()),
                model_id=ref,
                prediction=prediction,
                image=image,
                image_sha256=hashlib.sha256(image.data).hexdigest(),
                multi_label=multi_label,
            )
            for prediction, image in zip(predictions, images, strict=True)
        ]
        for one in served:
            self._announce(one)
        return served

    def _announce(self, served: ServedPrediction) -> None:
        for observer in self.observers:
            try:
                observer(served)
            except Exception:
                # The answer is already made; a failing log must not lose it.
                logger.exception("observer %r failed on a prediction", observer)


def _predict_named(
    predictor: Predictor,
    inputs: list[Any],
    images: Sequence[InputImage],
    confidence: float | None,
    top_k: int | None,
) -> list[Prediction]:
    """Predicts, naming the request's image in a decode error, not ``image 0``."""
    try:
        return predictor.predict(inputs, confidence=confidence, top_k=top_k)
    except ImageError as error:
        message = str(error)
        for index, image in enumerate(images):
            message = message.replace(f"inputs[{index}]", image.name)
        message = message.replace("<input>", images[0].name)
        raise type(error)(message) from None


def decode_base64(value: str | bytes, name: str) -> bytes:
    """The bytes of a base64 image, with or without a ``data:...;base64,`` start.

    Raises:
        ImageError: ``value`` is not base64.
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise ImageError(
            f"{name} is not valid base64; send the image file's bytes base64-encoded"
        ) from None


def roboflow_answer(served: ServedPrediction, threshold: float) -> dict[str, Any]:
    """The Roboflow classification response for one served prediction.

    Args:
        served: The prediction.
        threshold: The confidence a class needs to be listed (single-label).
    """
    prediction = served.prediction
    answer: dict[str, Any] = {
        "inference_id": served.inference_id,
        "time": round(prediction.time_ms / 1000, 6),
        "image": {"width": prediction.width, "height": prediction.height},
    }
    if served.multi_label:
        answer["predictions"] = {
            score.name: {"confidence": score.confidence, "class_id": score.class_id}
            for score in sorted(prediction.classes, key=lambda s: s.class_id)
        }
        answer["predicted_classes"] = list(prediction.predicted_classes)
    elif prediction.rejected:
        answer |= {"predictions": [], "top": "", "confidence": 0.0}
    else:
        answer["predictions"] = [
            {
                "class": score.name,
                "class_id": score.class_id,
                "confidence": score.confidence,
            }
            for score in prediction.classes
            if score.confidence >= threshold
        ]
        answer |= {"top": prediction.top or "", "confidence": prediction.confidence}
    answer["prediction_type"] = "ClassificationModel"
    return answer


def listing_threshold(predictor: Predictor, confidence: float | None) -> float:
    """The confidence a class needs to appear in a single-label answer."""
    if confidence is not None:
        return confidence
    return predictor.metadata.rejection_threshold

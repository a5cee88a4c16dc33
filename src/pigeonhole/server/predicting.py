"""Serving predictions: images in, predictions out, every one announced to observers.

Every route that predicts goes through `PredictionService.predict`: it takes the
model from the `LoadedModels` cache, decodes the request's images on the request's
own thread (a corrupt image fails its own request and no other), predicts them in
one predictor call shared with the other requests for the same model that arrive
together (`pigeonhole.server.batching`), and hands each `ServedPrediction` to the
observers (the prediction log, the webhooks), once per image, on the request's
thread. An observer that fails is logged and never fails the request.

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
import functools
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from pigeonhole.config import settings
from pigeonhole.errors import ImageError, ValidationError
from pigeonhole.server.batching import (
    BatchStats,
    CallCounter,
    MicroBatcher,
    check_batching,
)
from pigeonhole.server.serving import LoadedModels, ModelRef
from pigeonhole.server.settings import DEFAULT_BATCH_WINDOW_MS, DEFAULT_MAX_BATCH_IMAGES

if TYPE_CHECKING:
    from pigeonhole.inference.decode import DecodedImage
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
        batch_window_ms: How long a batch may wait for requests on their way
            (`pigeonhole.server.batching`); 0 gives every request its own call.
        max_batch_images: Most images in one shared predictor call.

    Attributes:
        models: The model cache.
        observers: Called with every served prediction.
    """

    def __init__(
        self,
        models: LoadedModels,
        *,
        batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS,
        max_batch_images: int = DEFAULT_MAX_BATCH_IMAGES,
    ) -> None:
        self.models = models
        self.observers: list[Observer] = []
        self._window_s = batch_window_ms / 1000
        self._max_images = max_batch_images
        self._counter = CallCounter()
        # Keyed weakly by predictor: an unloaded model takes its batcher with it.
        self._batchers: weakref.WeakKeyDictionary[Predictor, _Batcher] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        check_batching(self._window_s, self._max_images)

    @property
    def stats(self) -> BatchStats:
        """Predictor calls so far and how many requests each one answered."""
        return self._counter.snapshot()

    def predict(
        self,
        model_id: str,
        images: Sequence[InputImage],
        *,
        confidence: float | None = None,
        top_k: int | None = None,
    ) -> list[ServedPrediction]:
        """Predicts ``images`` with model ``model_id``, batched with other requests.

        Raises:
            ValidationError: A malformed model id, no images, or a bad argument.
            NotFoundError: No such model.
            ImageError: An image cannot be decoded; the message names it.
        """
        if not images:
            raise ValidationError("no image given; send at least one image")
        ref = ModelRef.parse(model_id).model_id
        predictor = self.models.get(ref)
        # Checked here so that a bad argument fails before any decoding.
        predictor.predict_prepared([], top_k=top_k, confidence=confidence)
        run = functools.partial(_run_prepared, predictor, top_k, confidence)
        with self._batcher(predictor).expect() as arrival:
            prepared = _prepare_all(predictor, images)
            predictions = arrival.submit((top_k, confidence), prepared, run)
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

    def _batcher(self, predictor: Predictor) -> _Batcher:
        """The batcher of ``predictor``, made on its first request."""
        with self._lock:
            batcher = self._batchers.get(predictor)
            if batcher is None:
                batcher = MicroBatcher(
                    window_s=self._window_s,
                    max_items=self._max_images,
                    counter=self._counter,
                )
                self._batchers[predictor] = batcher
            return batcher

    def _announce(self, served: ServedPrediction) -> None:
        for observer in self.observers:
            try:
                observer(served)
            except Exception:
                # The answer is already made; a failing log must not lose it.
                logger.exception("observer %r failed on a prediction", observer)


@dataclass(frozen=True)
class _Prepared:
    """One decoded image and the milliseconds its decoding took."""

    image: DecodedImage
    decode_ms: float


_Batcher: TypeAlias = "MicroBatcher[_Prepared, Prediction]"


def _prepare(predictor: Predictor, image: InputImage) -> _Prepared:
    started = time.perf_counter()
    decoded = predictor.prepare(image.data, image.name)
    return _Prepared(decoded, (time.perf_counter() - started) * 1000)


def _prepare_all(predictor: Predictor, images: Sequence[InputImage]) -> list[_Prepared]:
    """Decodes a request's images, in parallel when there are several.

    Raises:
        ImageError: An image cannot be decoded; the message names it.
    """
    workers = min(len(images), settings().worker_count())
    if workers <= 1:
        return [_prepare(predictor, image) for image in images]
    # Pillow releases the GIL while decoding and resizing.
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(functools.partial(_prepare, predictor), images))


def _run_prepared(
    predictor: Predictor,
    top_k: int | None,
    confidence: float | None,
    items: list[_Prepared],
) -> list[Prediction]:
    """One predictor call for the decoded images of one or more requests."""
    return predictor.predict_prepared(
        [item.image for item in items],
        top_k=top_k,
        confidence=confidence,
        decode_ms=[item.decode_ms for item in items],
    )


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

"""Predict with an exported model: ranked classes, calibrated confidences, no result.

A `Predictor` holds one ONNX Runtime session and the model's metadata. Each image
goes through `pigeonhole.inference.decode` (the safe decode path and the model's own
preprocessing), a batch runs as one call to the graph (in chunks of `BATCH_SIZE`),
and the logits become a `Prediction`:

- confidences are calibrated: ``softmax(logits / T)`` for single-label models,
  ``sigmoid(logits / T)`` per class for multi-label ones;
- single-label: ``top`` is the best class, or None ("no result") when its confidence
  is below the model's rejection threshold (or the caller's ``confidence=``);
- multi-label: ``predicted_classes`` are the classes at or above their own
  threshold, best first, and ``top`` is the first of them;
- an out-of-distribution score above the model's OOD threshold also means no result;
- with ``coverage=``, a conformal prediction set: every class whose confidence is at
  least ``1 - q`` for the model's calibrated quantile ``q``.

Example:
    >>> from pigeonhole.inference.predictor import Predictor
    >>> predictor = Predictor.load("models/bananas-3")  # doctest: +SKIP
    >>> prediction = predictor.predict("photo.jpg", top_k=3)  # doctest: +SKIP
    >>> prediction.top, round(prediction.confidence, 2)  # doctest: +SKIP
    ('ripe', 0.93)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, overload

import numpy as np
from PIL import Image

from pigeonhole.config import settings
from pigeonhole.errors import ValidationError
from pigeonhole.inference.decode import DecodedImage, ModelPixels
from pigeonhole.inference.fetch import UrlLimits, is_url
from pigeonhole.inference.ood import OutOfDistribution
from pigeonhole.models.package import (
    INPUT_NAME,
    OUTPUT_NAMES,
    ModelMetadata,
    ModelPackage,
    calibrated,
    create_session,
)

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

ImageInput: TypeAlias = (
    str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray
)
"""What `Predictor.predict` accepts as one image."""

#: Images per call to the graph; larger batches run in chunks of this size.
BATCH_SIZE = 32

_DEFAULT_CLASS_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class ClassScore:
    """One class and its calibrated confidence.

    Attributes:
        name: The class name.
        class_id: Index of the class in the model's ``class_names``.
        confidence: Calibrated confidence from 0 to 1.
    """

    name: str
    class_id: int
    confidence: float


@dataclass(frozen=True)
class Prediction:
    """What a model says about one image.

    Attributes:
        top: The answer: the best class, or None for "no result".
        confidence: Calibrated confidence of the best class, also when rejected.
        classes: Classes ranked by calibrated confidence, best first (``top_k``).
        predicted_classes: Multi-label: every class at or above its threshold,
            best first. Single-label: ``[top]``, or empty for no result.
        rejected: True when there is no result.
        ood_score: Out-of-distribution score (higher is further from the training
            images), or None when the model has no detector.
        prediction_set: The conformal prediction set when ``coverage`` was asked,
            else None.
        width: Width of the input image, upright, in pixels.
        height: Height of the input image, upright, in pixels.
        time_ms: Milliseconds spent on this image: its own decoding and its share
            of the batch's model call.
    """

    top: str | None
    confidence: float
    classes: list[ClassScore]
    predicted_classes: list[str]
    rejected: bool
    ood_score: float | None
    prediction_set: list[str] | None
    width: int
    height: int
    time_ms: float

    def to_dict(self) -> dict[str, Any]:
        """The prediction as JSON-safe values."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Options:
    top_k: int | None
    thresholds: np.ndarray  # one per class
    set_level: float | None  # conformal: classes with confidence >= this


class Predictor:
    """A loaded model, ready to predict.

    Build one with `load`; it is safe to share between threads (ONNX Runtime
    sessions run concurrent calls).

    Attributes:
        package: The model package.
        metadata: The model's metadata.
        pixels: The recipe that turns inputs into model pixels.
        urls: Limits for images given by URL; None refuses URLs.
    """

    def __init__(
        self,
        package: ModelPackage,
        session: onnxruntime.InferenceSession,
        *,
        draft: bool = True,
        urls: UrlLimits | None = UrlLimits(),  # noqa: B008 (frozen, so safe to share)
    ) -> None:
        self.package = package
        self.urls = urls
        self.metadata: ModelMetadata = package.metadata
        self.pixels = ModelPixels(
            self.metadata.preprocessing_recipe, self.metadata.input_size, draft=draft
        )
        self._session = session
        self._ood = OutOfDistribution.from_package(package)
        self._outputs = list(OUTPUT_NAMES[:1] if self._ood is None else OUTPUT_NAMES)

    @classmethod
    def load(
        cls,
        model: str | Path | ModelPackage,
        *,
        threads: int | None = None,
        draft: bool = True,
        urls: UrlLimits | None = UrlLimits(),  # noqa: B008 (frozen, so safe to share)
    ) -> Predictor:
        """Loads a model package for prediction.

        Args:
            model: The package folder, or a loaded `ModelPackage`.
            threads: Threads inside each model operator; None uses every free core.
            draft: Let the JPEG decoder scale down while decoding (see
                `pigeonhole.inference.decode`); False decodes every pixel.
            urls: Size, time and address limits for images given by URL
                (`pigeonhole.inference.fetch`); None refuses URLs.

        Raises:
            NotFoundError: The folder does not exist.
            ModelPackageError: The package is incomplete, corrupt or altered.

        Example:
            >>> predictor = Predictor.load("models/bananas-3")  # doctest: +SKIP
        """
        package = model if isinstance(model, ModelPackage) else ModelPackage.load(model)
        session = create_session(package.onnx_path, threads=threads)
        predictor = cls(package, session, draft=draft, urls=urls)
        predictor.run(np.zeros((1, *predictor.input_shape), dtype=np.uint8))  # warm-up
        logger.info("loaded model %s from %s", package.metadata.model_id, package.path)
        return predictor

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's class names, in the order of its logits."""
        return self.metadata.class_names

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape ``(height, width, 3)`` of one image as the graph takes it."""
        width, height = self.metadata.input_size
        return height, width, 3

    def __repr__(self) -> str:
        return f"Predictor({self.metadata.model_id!r}, path={str(self.package.path)!r})"

    @overload
    def predict(
        self,
        inputs: ImageInput,
        *,
        top_k: int | None = None,
        confidence: float | None = None,
        coverage: float | None = None,
    ) -> Prediction: ...

    @overload
    def predict(
        self,
        inputs: list[ImageInput] | tuple[ImageInput, ...],
        *,
        top_k: int | None = None,
        confidence: float | None = None,
        coverage: float | None = None,
    ) -> list[Prediction]: ...

    def predict(
        self,
        inputs: ImageInput | list[ImageInput] | tuple[ImageInput, ...],
        *,
        top_k: int | None = None,
        confidence: float | None = None,
        coverage: float | None = None,
    ) -> Prediction | list[Prediction]:
        """Predicts one image, or a list of images in batches.

        Args:
            inputs: A file path, an http(s) URL, the file's bytes, a Pillow image
                (taken as upright), a uint8 ``[H, W, 3]`` RGB array, or a list of
                these.
            top_k: Keep this many best classes in ``classes``; None keeps all.
            confidence: A threshold that replaces the model's own: the rejection
                threshold (single-label) or every class threshold (multi-label).
            coverage: Ask for a conformal prediction set at this coverage; the
                model must have been calibrated for it.

        Returns:
            A `Prediction`, or a list of them in input order for a list.

        Raises:
            ImageError: An image cannot be decoded; the message names it.
            ValidationError: An argument is out of range, an input is of an
                unsupported kind, a URL cannot be fetched (see
                `pigeonhole.inference.fetch`), or the model has no conformal
                calibration for ``coverage``.

        Example:
            >>> predictor.predict(["a.jpg", "b.png"], top_k=1)  # doctest: +SKIP
        """
        options = self._options(top_k, confidence, coverage)
        single = not isinstance(inputs, list | tuple)
        items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        predictions: list[Prediction] = []
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start : start + BATCH_SIZE]
            predictions.extend(self._predict_chunk(chunk, start, single, options))
        return predictions[0] if single else predictions

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Runs the graph on prepared pixels, in chunks of `BATCH_SIZE`.

        Args:
            batch: uint8 ``[N, H, W, 3]`` at the model input size.

        Returns:
            Logits ``[N, C]``, and embeddings ``[N, D]`` when the model's
            out-of-distribution detector needs them (else None).
        """
        logits, embeddings = [], []
        for start in range(0, len(batch), BATCH_SIZE):
            outputs = self._session.run(
                self._outputs, {INPUT_NAME: batch[start : start + BATCH_SIZE]}
            )
            logits.append(outputs[0])
            embeddings.append(outputs[-1])
        if self._ood is None:
            return np.concatenate(logits), None
        return np.concatenate(logits), np.concatenate(embeddings)

    def prepare(self, item: ImageInput, name: str | None = None) -> DecodedImage:
        """Decodes one input to model pixels; thread-safe, releases the GIL mostly.

        Args:
            item: One input, as `predict` takes.
            name: How error messages name the input; paths and URLs name
                themselves by default.

        Raises:
            ImageError: The image cannot be decoded.
            ValidationError: The input is of an unsupported kind, or a URL cannot
                be fetched.
        """
        return self._decode(item, name or _default_name(item))

    def predict_prepared(
        self,
        images: list[DecodedImage],
        *,
        top_k: int | None = None,
        confidence: float | None = None,
        coverage: float | None = None,
        decode_ms: list[float] | None = None,
    ) -> list[Prediction]:
        """Predicts images that `prepare` decoded, as one call to the graph.

        Args:
            images: Decoded images.
            top_k: As in `predict`.
            confidence: As in `predict`.
            coverage: As in `predict`.
            decode_ms: Milliseconds each image took to decode, added to its
                ``time_ms``.

        Raises:
            ValidationError: As in `predict`.
        """
        options = self._options(top_k, confidence, coverage)  # checked even if empty
        if not images:
            return []
        return self._answer_all(images, decode_ms or [0.0] * len(images), options)

    def _predict_chunk(
        self, chunk: list[ImageInput], offset: int, single: bool, options: _Options
    ) -> list[Prediction]:
        names = (
            ["<input>"]
            if single
            else [f"inputs[{offset + i}]" for i in range(len(chunk))]
        )
        decoded, decode_ms = self._decode_all(chunk, names)
        return self._answer_all(decoded, decode_ms, options)

    def _answer_all(
        self, decoded: list[DecodedImage], decode_ms: list[float], options: _Options
    ) -> list[Prediction]:
        started = time.perf_counter()
        logits, embeddings = self.run(np.stack([image.pixels for image in decoded]))
        model_ms = (time.perf_counter() - started) * 1000 / len(decoded)

        multi_label = self.metadata.project_type.is_multi_label
        scores = calibrated(logits, self.metadata.temperature, multi_label)
        ood_scores = None if self._ood is None else self._ood.scores(logits, embeddings)
        return [
            self._answer(
                scores[i],
                None if ood_scores is None else float(ood_scores[i]),
                decoded[i],
                options,
                decode_ms[i] + model_ms,
            )
            for i in range(len(decoded))
        ]

    def _decode_all(
        self, chunk: list[ImageInput], names: list[str]
    ) -> tuple[list[DecodedImage], list[float]]:
        workers = min(len(chunk), settings().worker_count())
        if workers <= 1:
            timed = list(map(self._decode_timed, chunk, names))
        else:
            # Pillow releases the GIL while decoding and resizing.
            with ThreadPoolExecutor(workers) as pool:
                timed = list(pool.map(self._decode_timed, chunk, names))
        return [image for image, _ in timed], [ms for _, ms in timed]

    def _decode_timed(self, item: ImageInput, name: str) -> tuple[DecodedImage, float]:
        started = time.perf_counter()
        image = self._decode(item, name)
        return image, (time.perf_counter() - started) * 1000

    def _decode(self, item: ImageInput, name: str) -> DecodedImage:
        if isinstance(item, str) and is_url(item):
            if self.urls is None:
                raise ValidationError(
                    f"{name}: {item!r} is a URL and this predictor fetches none; "
                    "fetch it first and pass the bytes"
                )
            return self.pixels.from_bytes(self.urls.fetch(item), name=item)
        if isinstance(item, str | Path):
            return self.pixels.from_path(item)
        if isinstance(item, bytes | bytearray | memoryview):
            return self.pixels.from_bytes(bytes(item), name=name)
        if isinstance(item, Image.Image):
            return self.pixels.from_image(item)
        if isinstance(item, np.ndarray):
            return self.pixels.from_array(item, name=name)
        raise ValidationError(
            f"{name}: cannot predict a {type(item).__name__}; pass a file path, "
            "bytes, a Pillow image or a uint8 [H, W, 3] array"
        )

    def _answer(
        self,
        scores: np.ndarray,
        ood_score: float | None,
        image: DecodedImage,
        options: _Options,
        time_ms: float,
    ) -> Prediction:
        # Plain lists before the loops: indexing numpy arrays element by element
        # cost 6 ms per image for a 1000-class model (seen with py-spy).
        names = self.class_names
        order = np.argsort(-scores, kind="stable")
        out_of_distribution = self._ood is not None and self._ood.rejects(ood_score)
        passed = (scores >= options.thresholds)[order]
        predicted = (
            [] if out_of_distribution else [names[i] for i in order[passed].tolist()]
        )
        if not self.metadata.project_type.is_multi_label:
            predicted = predicted[:1] if passed[0] else []
        prediction_set = None
        if options.set_level is not None:
            in_set = order[scores[order] >= options.set_level]
            prediction_set = [names[i] for i in in_set.tolist()]
        kept = order[: options.top_k].tolist()
        kept_scores = scores[kept].tolist()
        return Prediction(
            top=predicted[0] if predicted else None,
            confidence=float(scores[order[0]]),
            classes=[
                ClassScore(names[i], i, score)
                for i, score in zip(kept, kept_scores, strict=True)
            ],
            predicted_classes=predicted,
            rejected=not predicted,
            ood_score=ood_score,
            prediction_set=prediction_set,
            width=image.width,
            height=image.height,
            time_ms=time_ms,
        )

    def _options(
        self, top_k: int | None, confidence: float | None, coverage: float | None
    ) -> _Options:
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
        ):
            raise ValidationError(
                f"top_k={top_k!r} must be a whole number of 1 or more, or None"
            )
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise ValidationError(
                f"confidence={confidence!r} must be from 0 to 1, or None"
            )
        return _Options(
            top_k=top_k,
            thresholds=self._thresholds(confidence),
            set_level=self._set_level(coverage),
        )

    def _thresholds(self, confidence: float | None) -> np.ndarray:
        count = len(self.class_names)
        metadata = self.metadata
        if confidence is not None:
            value = confidence
        elif not metadata.project_type.is_multi_label:
            value = metadata.rejection_threshold
        elif metadata.class_thresholds:
            return np.asarray(metadata.class_thresholds, dtype=np.float64)
        else:
            value = _DEFAULT_CLASS_THRESHOLD
        return np.full(count, value, dtype=np.float64)

    def _set_level(self, coverage: float | None) -> float | None:
        if coverage is None:
            return None
        metadata = self.metadata
        if not 0.0 < coverage < 1.0:
            raise ValidationError(f"coverage={coverage!r} must be between 0 and 1")
        if metadata.project_type.is_multi_label or metadata.conformal_quantile is None:
            raise ValidationError(
                f"model {metadata.model_id} has no conformal calibration, so "
                f"coverage={coverage!r} cannot be honoured; leave coverage out"
            )
        calibrated_for = metadata.conformal_coverage
        if calibrated_for is not None and abs(calibrated_for - coverage) > 1e-9:
            raise ValidationError(
                f"coverage={coverage!r} differs from the coverage {calibrated_for!r} "
                f"model {metadata.model_id} was calibrated for; ask for that"
            )
        return 1.0 - metadata.conformal_quantile


def _default_name(item: object) -> str:
    if isinstance(item, str | Path):
        return str(item)
    return f"<{type(item).__name__}>"

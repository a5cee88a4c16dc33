"""Predicting many images with decoding overlapped with the model.

`predict_stream` takes any iterable of inputs (a folder walk, a list of URLs) and
yields one `BatchOutcome` per input, in input order. While ONNX Runtime runs one
batch, a thread pool already decodes the next: Pillow releases the GIL while it
decodes and resizes, and ONNX Runtime while it computes, so on a few cores the two
overlap instead of taking turns. An image that cannot be decoded or fetched is
reported in its outcome and the stream goes on; it is never skipped silently.

Example:
    >>> from pathlib import Path
    >>> files = sorted(Path("photos").rglob("*.jpg"))  # doctest: +SKIP
    >>> for outcome in predict_stream(predictor, files):  # doctest: +SKIP
    ...     print(outcome.source, outcome.prediction and outcome.prediction.top)
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pigeonhole.config import settings
from pigeonhole.errors import ImageError, ValidationError
from pigeonhole.inference.decode import DecodedImage
from pigeonhole.inference.predictor import ImageInput, Prediction, Predictor

logger = logging.getLogger(__name__)

#: Images per call to the graph in `predict_stream`.
STREAM_BATCH_SIZE = 16


@dataclass(frozen=True)
class BatchOutcome:
    """The result for one input of a stream.

    Attributes:
        index: Position of the input in the stream, from 0.
        source: The input's name: its path or URL, else ``inputs[<index>]``.
        prediction: The prediction, or None when the image failed.
        error: Why the image failed (the error's message), or None.
    """

    index: int
    source: str
    prediction: Prediction | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the image was predicted."""
        return self.prediction is not None

    def to_dict(self) -> dict[str, Any]:
        """One JSON-safe row: ``source``, the prediction's fields, and ``error``
        (the prediction's fields are left out when it failed)."""
        if self.prediction is None:
            return {"source": self.source, "error": self.error}
        row = {"source": self.source, **self.prediction.to_dict(), "error": None}
        row["time_ms"] = round(row["time_ms"], 3)
        return row


_Decoded = tuple[DecodedImage | None, float, str | None]


def predict_stream(
    predictor: Predictor,
    inputs: Iterable[ImageInput],
    *,
    batch_size: int = STREAM_BATCH_SIZE,
    top_k: int | None = None,
    confidence: float | None = None,
    coverage: float | None = None,
    workers: int | None = None,
) -> Iterator[BatchOutcome]:
    """Predicts every input, decoding the next batch while the model runs this one.

    Args:
        predictor: The loaded model.
        inputs: Paths, URLs, bytes, Pillow images or arrays; read lazily.
        batch_size: Images per call to the graph.
        top_k: As in `Predictor.predict`.
        confidence: As in `Predictor.predict`.
        coverage: As in `Predictor.predict`.
        workers: Decoding threads; None uses ``PIGEONHOLE_WORKERS`` or every
            free core.

    Yields:
        One outcome per input, in input order.

    Raises:
        ValidationError: ``batch_size`` or ``workers`` is below 1, or an option
            is out of range (raised before any image is read).
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValidationError(f"batch_size={batch_size!r} must be 1 or more")
    if workers is not None and workers < 1:
        raise ValidationError(f"workers={workers!r} must be 1 or more, or None")
    options: dict[str, Any] = {
        "top_k": top_k,
        "confidence": confidence,
        "coverage": coverage,
    }
    predictor.predict_prepared([], **options)  # refuses bad options up front
    chunks = _chunks(enumerate(inputs), batch_size)
    with ThreadPoolExecutor(workers or settings().worker_count()) as pool:
        pending = _submit(pool, predictor, next(chunks, []))
        while pending:
            ahead = _submit(pool, predictor, next(chunks, []))
            yield from _finish(predictor, pending, options)
            pending = ahead


def _chunks(
    items: Iterator[tuple[int, ImageInput]], size: int
) -> Iterator[list[tuple[int, ImageInput]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _submit(
    pool: ThreadPoolExecutor,
    predictor: Predictor,
    chunk: list[tuple[int, ImageInput]],
) -> list[tuple[int, str, Future[_Decoded]]]:
    submitted = []
    for index, item in chunk:
        name = _name(index, item)
        submitted.append((index, name, pool.submit(_decode, predictor, item, name)))
    return submitted


def _decode(predictor: Predictor, item: ImageInput, name: str) -> _Decoded:
    started = time.perf_counter()
    try:
        image = predictor.prepare(item, name)
    except (ImageError, ValidationError) as error:
        return None, 0.0, str(error)
    except Exception as error:  # a bad image never stops the stream
        logger.exception("unexpected failure decoding %s", name)
        return (
            None,
            0.0,
            f"{name}: unexpected failure ({type(error).__name__}: {error})",
        )
    return image, (time.perf_counter() - started) * 1000, None


def _finish(
    predictor: Predictor,
    pending: list[tuple[int, str, Future[_Decoded]]],
    options: dict[str, Any],
) -> list[BatchOutcome]:
    decoded = [(index, name, future.result()) for index, name, future in pending]
    good = [(index, name, result) for index, name, result in decoded if result[0]]
    predictions = predictor.predict_prepared(
        [result[0] for _, _, result in good if result[0] is not None],
        decode_ms=[result[1] for _, _, result in good],
        **options,
    )
    by_index = {index: p for (index, _, _), p in zip(good, predictions, strict=True)}
    return [
        BatchOutcome(index, name, by_index.get(index), result[2])
        for index, name, result in decoded
    ]


def _name(index: int, item: ImageInput) -> str:
    if isinstance(item, str | Path):
        return str(item)
    return f"inputs[{index}]"

"""Batch prediction on a Ray cluster: the same predictor, on many machines.

`predict_on_ray` hands a list of image paths and URLs to Ray Data, which spreads it
over actors; each actor loads the model once and runs `predict_stream` (decoding
overlapped with the model) over the blocks it is given, with as many threads as it
has CPUs. Rows come back in input order, one per image, in the shape of
`BatchOutcome.to_dict`; an image that fails is a row with its error, as on one
machine. Nothing here schedules work itself: Ray places the actors, and a
cluster's autoscaler adds machines.

Every machine must reach the model folder and the images at the same paths (a
shared disk) or fetch them by URL. Ray is an optional dependency:
``pip install "pigeonhole[ray]"``; on one machine without a cluster, `ray.init`
starts a local one.

Example:
    >>> plan = RayPlan(actors=8)
    >>> rows = predict_on_ray("models/bananas/3", paths, plan=plan)  # doctest: +SKIP
    >>> for row in rows:  # doctest: +SKIP
    ...     print(row["source"], row["top"] or row["error"])
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pigeonhole.errors import DependencyError, ValidationError
from pigeonhole.inference.batch import STREAM_BATCH_SIZE, predict_stream
from pigeonhole.inference.fetch import UrlLimits
from pigeonhole.inference.predictor import Predictor

logger = logging.getLogger(__name__)

#: Images an actor takes at a time.
CHUNK_SIZE = 64


@dataclass(frozen=True)
class RayPlan:
    """How the work is spread.

    Attributes:
        actors: Actors holding a loaded model; None gives one per
            ``cpus_per_actor`` CPUs of the cluster.
        cpus_per_actor: CPUs each actor asks Ray for, and its decoding and model
            threads.
        chunk_size: Images an actor takes at a time (it predicts them in
            batches of ``batch_size``).
        address: A running cluster (``auto``, ``ray://host:10001``); None joins
            the cluster of ``RAY_ADDRESS`` or starts a local one.
    """

    actors: int | None = None
    cpus_per_actor: int = 1
    chunk_size: int = CHUNK_SIZE
    address: str | None = None

    def __post_init__(self) -> None:
        for name in ("cpus_per_actor", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValidationError(f"{name}={getattr(self, name)} must be 1 or more")
        if self.actors is not None and self.actors < 1:
            raise ValidationError(f"actors={self.actors} must be 1 or more, or None")


@dataclass(frozen=True)
class _Job:
    """What every actor needs to know; sent to each one once."""

    model: str
    threads: int
    batch_size: int
    top_k: int | None
    confidence: float | None
    allow_private_urls: bool


def predict_on_ray(
    model: str | Path,
    sources: Sequence[str | Path],
    *,
    plan: RayPlan | None = None,
    batch_size: int = STREAM_BATCH_SIZE,
    top_k: int | None = None,
    confidence: float | None = None,
    allow_private_urls: bool = False,
) -> Iterator[dict[str, Any]]:
    """Predicts every source on a Ray cluster; yields one row per source, in order.

    Args:
        model: The model package folder, on a disk every machine sees.
        sources: Image paths (on such a disk) and http(s) URLs.
        plan: Actors, CPUs and chunks; the defaults of `RayPlan` when None.
        batch_size: Images per call to the model, in each actor.
        top_k: As in `Predictor.predict`.
        confidence: As in `Predictor.predict`.
        allow_private_urls: Also fetch URLs on loopback and private networks.

    Yields:
        ``{"source", "top", "confidence", "classes", ..., "error"}`` per source,
        as `BatchOutcome.to_dict` gives it.

    Raises:
        DependencyError: Ray is not installed or the cluster is unreachable (when
            the first row is asked for).
        ValidationError: A bad option, raised at once.
        NotFoundError: No model folder at ``model``, raised at once.
    """
    plan = plan or RayPlan()
    if batch_size < 1:
        raise ValidationError(f"batch_size={batch_size} must be 1 or more")
    # Loads the model here once, so a bad folder or option fails before any actor.
    Predictor.load(model, threads=1).predict_prepared(
        [], top_k=top_k, confidence=confidence
    )
    job = _Job(
        model=str(Path(model).resolve()),
        threads=plan.cpus_per_actor,
        batch_size=batch_size,
        top_k=top_k,
        confidence=confidence,
        allow_private_urls=allow_private_urls,
    )
    return _rows(job, [str(source) for source in sources], plan)


def _rows(job: _Job, sources: list[str], plan: RayPlan) -> Iterator[dict[str, Any]]:
    if not sources:
        return
    ray = _start_ray(plan.address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    items = [{"source": source} for source in sources]
    predicted = ray.data.from_items(items).map_batches(
        _Actor,
        fn_constructor_kwargs={"job": asdict(job)},
        batch_size=plan.chunk_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(
            size=plan.actors or _actor_count(ray, plan.cpus_per_actor)
        ),
        num_cpus=plan.cpus_per_actor,
    )
    for row in predicted.iter_rows():
        yield json.loads(row["row"])


def _start_ray(address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        raise DependencyError(
            'Ray is not installed; install it with pip install "pigeonhole[ray]"'
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except ConnectionError as error:
            raise DependencyError(
                f"no Ray cluster at address={address!r}: {error}; start one with "
                "`ray start --head`, or leave the address out for a local one"
            ) from None
    return ray


def _actor_count(ray: Any, cpus_per_actor: int) -> int:
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // cpus_per_actor)


class _Actor:
    """A Ray Data actor: one loaded model, predicting the batches it is given."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = _Job(**job)
        limits = UrlLimits(allow_private=self.job.allow_private_urls)
        self.predictor = Predictor.load(
            self.job.model, threads=self.job.threads, urls=limits
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = predict_stream(
            self.predictor,
            [str(source) for source in batch["source"]],
            batch_size=self.job.batch_size,
            top_k=self.job.top_k,
            confidence=self.job.confidence,
            workers=self.job.threads,
        )
        rows = [json.dumps(outcome.to_dict()) for outcome in outcomes]
        return {"row": np.array(rows, dtype=object)}

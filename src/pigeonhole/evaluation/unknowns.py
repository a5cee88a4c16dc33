"""How well a model says "none of my classes": known images against unknown ones.

The known images are the original files of the test split of the model's dataset
version (never used to choose anything); the unknown images are whatever the
caller gives: photos of other projects or other data sets. Both go through the
served path, a `Predictor` on the model package, so the figures describe the
model exactly as it answers.

Two scores are compared by AUROC (the chance that a random unknown image scores
higher than a random known one): the model's out-of-distribution score (such as
the distance of the image's embedding to the training images) and the baseline,
``1 - confidence`` (max-softmax). The report also gives the share of each set
that the model answers with "no result" at its stored thresholds.

Example:
    >>> report = evaluate_unknowns(project, 1, ["other-photos/"])  # doctest: +SKIP
    >>> report.auroc
    {'ood_score': 0.97, 'max_softmax': 0.88}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.metrics import ood_auroc
from pigeonhole.inference.batch import predict_stream
from pigeonhole.inference.predictor import ImageInput, Prediction, Predictor
from pigeonhole.progress import Progress, report
from pigeonhole.project import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnknownsReport:
    """Known test images against unknown images, as the model serves them.

    Attributes:
        model_id: The model, ``<project>/<n>``.
        version: The dataset version whose test split gave the known images.
        known: Known images predicted.
        unknown: Unknown images predicted.
        auroc: AUROC per score: ``ood_score`` (when the model has a detector) and
            ``max_softmax`` (``1 - confidence``); 1.0 separates perfectly.
        unknown_rejected: Share of unknown images answered with "no result".
        known_rejected: Share of known images answered with "no result".
        failed: ``(name, reason)`` of each unknown image that could not be read.
    """

    model_id: str
    version: int
    known: int
    unknown: int
    auroc: dict[str, float]
    unknown_rejected: float
    known_rejected: float
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


def evaluate_unknowns(
    project: Project,
    number: int,
    unknowns: Iterable[ImageInput],
    *,
    version: int | None = None,
    progress: Progress | None = None,
) -> UnknownsReport:
    """Measures how model ``number`` of ``project`` tells unknown images apart.

    Args:
        project: The model's project.
        number: The model's number.
        unknowns: Images of none of the model's classes: paths, bytes, Pillow
            images or arrays. Unreadable ones are reported, not fatal.
        version: Dataset version for the known test images; the model's own when
            None.
        progress: Called with ``("known", done, total)`` and ``("unknown", done,
            None)``.

    Raises:
        NotFoundError: No such model or version.
        ValidationError: The version's test split or the unknowns hold no image.
    """
    from pigeonhole.training.registry import get_model

    model = get_model(project, number)
    found = project.version(version if version is not None else model.version)
    predictor = Predictor.load(model.path, urls=None)
    known = _known(predictor, project, found, progress)
    unknown, failed = _unknown(predictor, unknowns, progress)
    if not unknown:
        raise ValidationError(
            "no unknown image could be predicted; give folders or files of images "
            f"of none of {model.model_id}'s classes"
            + (f" ({len(failed)} failed, first: {failed[0][1]})" if failed else "")
        )
    auroc = {"max_softmax": _auroc(known, unknown, _uncertainty)}
    if known[0].ood_score is not None:
        auroc = {"ood_score": _auroc(known, unknown, _ood), **auroc}
    return UnknownsReport(
        model_id=model.model_id,
        version=found.number,
        known=len(known),
        unknown=len(unknown),
        auroc=auroc,
        unknown_rejected=_rejected(unknown),
        known_rejected=_rejected(known),
        failed=failed,
    )


def _known(
    predictor: Predictor, project: Project, version: Any, progress: Progress | None
) -> list[Prediction]:
    items = [item for item in version.items("test") if item.copy == 0]
    if not items:
        raise ValidationError(
            f"version {version.id} has no test images to compare the unknowns with"
        )
    blobs = project.workspace.blobs
    originals = (blobs.get(item.source) for item in items)
    predictions: list[Prediction] = []
    for outcome in predict_stream(predictor, originals):
        if outcome.prediction is None:
            logger.warning(
                "test image %s: %s", items[outcome.index].name, outcome.error
            )
        else:
            predictions.append(outcome.prediction)
        report(progress, "known", outcome.index + 1, len(items))
    return predictions


def _unknown(
    predictor: Predictor, unknowns: Iterable[ImageInput], progress: Progress | None
) -> tuple[list[Prediction], list[tuple[str, str]]]:
    predictions: list[Prediction] = []
    failed: list[tuple[str, str]] = []
    for outcome in predict_stream(predictor, unknowns):
        if outcome.prediction is None:
            failed.append((outcome.source, outcome.error or "unreadable"))
        else:
            predictions.append(outcome.prediction)
        report(progress, "unknown", outcome.index + 1, None)
    return predictions, failed


def _uncertainty(prediction: Prediction) -> float:
    return 1.0 - prediction.confidence


def _ood(prediction: Prediction) -> float:
    return float(prediction.ood_score if prediction.ood_score is not None else 0.0)


def _auroc(known: list[Prediction], unknown: list[Prediction], score: Any) -> float:
    return ood_auroc(
        np.array([score(p) for p in known]), np.array([score(p) for p in unknown])
    )


def _rejected(predictions: list[Prediction]) -> float:
    return float(np.mean([p.rejected for p in predictions])) if predictions else 0.0

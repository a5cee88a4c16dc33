"""A project's trained models: list, open, compare, delete and evaluate them.

Models are numbered per project; model ``n`` of project ``bananas`` has the id
``bananas/n`` and lives in ``<workspace>/models/bananas/n/`` (see
`pigeonhole.models.package` for what the folder holds).

Imports no torch: evaluating runs the exported graph with ONNX Runtime.

Example:
    >>> [model.model_id for model in list_models(project)]  # doctest: +SKIP
    ['bananas/1', 'bananas/2']
    >>> compare_models(project, [1, 2])["accuracy"]  # doctest: +SKIP
    {1: 0.91, 2: 0.95}
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.models.metadata import ModelMetadata
from pigeonhole.models.package import (
    INPUT_NAME,
    ModelPackage,
    create_session,
)
from pigeonhole.progress import Progress, report
from pigeonhole.storage.database import ModelRow
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.scoring import Decision, Scores, score_outputs

if TYPE_CHECKING:
    from pigeonhole.project import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedModel:
    """A model of a project, as recorded.

    Attributes:
        project: Slug of the project.
        number: The model's number within the project.
        path: The package folder.
        metadata: The package's ``model.json``.
        metrics: Headline test-split metrics.
        mode: ``fast`` or ``fine-tune``.
        backbone: Backbone name.
        version: Number of the dataset version it was trained on.
        run_id: The run that made it, if recorded.
        created_at: When it was recorded.
    """

    project: str
    number: int
    path: Path
    metadata: ModelMetadata
    metrics: dict[str, Any]
    mode: str
    backbone: str
    version: int
    run_id: int | None
    created_at: datetime

    @property
    def model_id(self) -> str:
        """``<project-slug>/<number>``."""
        return f"{self.project}/{self.number}"

    def package(self) -> ModelPackage:
        """The package, with its graph's checksum verified."""
        return ModelPackage.load(self.path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the metadata in full)."""
        return {
            "model_id": self.model_id,
            "project": self.project,
            "number": self.number,
            "path": str(self.path),
            "mode": self.mode,
            "backbone": self.backbone,
            "version": self.version,
            "run_id": self.run_id,
            "created_at": self.created_at.isoformat(),
            "metrics": self.metrics,
            "metadata": self.metadata.to_dict(),
        }


def list_models(project: Project) -> list[TrainedModel]:
    """Every model of ``project``, by number; a model whose folder is gone or
    damaged is left out with a warning."""
    with project.workspace.sessions() as session:
        rows = list(
            session.scalars(
                select(ModelRow)
                .where(ModelRow.project_id == project.id)
                .order_by(ModelRow.number)
            )
        )
    models = []
    for row in rows:
        try:
            models.append(_model(project, row))
        except Exception as error:  # one bad folder hides one model, not all
            logger.warning(
                "model %s/%d is unreadable: %s", project.slug, row.number, error
            )
    return models


def get_model(project: Project, number: int) -> TrainedModel:
    """Model ``number`` of ``project``.

    Raises:
        NotFoundError: No such model.
        ModelPackageError: Its folder is incomplete or damaged.
    """
    return _model(project, _row(project, number))


def delete_model(project: Project, number: int) -> None:
    """Deletes model ``number``: its row and its folder.

    Raises:
        NotFoundError: No such model.
    """
    row = _row(project, number)
    path = project.workspace.root / row.path
    with project.workspace.sessions.begin() as session:
        found = session.get(ModelRow, row.id)
        if found is not None:
            session.delete(found)
    shutil.rmtree(path, ignore_errors=True)
    logger.info("deleted model %s/%d", project.slug, number)


def compare_models(
    project: Project, numbers: Sequence[int]
) -> dict[str, dict[int, Any]]:
    """Headline metrics side by side: metric name to ``{number: value}``.

    Raises:
        NotFoundError: A number is not a model of ``project``.
        ValidationError: No numbers given.
    """
    if not numbers:
        raise ValidationError("give at least one model number to compare")
    rows = [_row(project, number) for number in numbers]
    names: list[str] = []
    for row in rows:
        names += [name for name in row.metrics if name not in names]
    return {name: {row.number: row.metrics.get(name) for row in rows} for name in names}


@dataclass(frozen=True)
class Evaluation:
    """A model measured on a dataset version.

    Attributes:
        model_id: The model.
        version: Dataset version number evaluated on.
        split: ``test``, or ``all`` for every image of the version.
        skipped: Images left out because a label is not one of the model's classes.
        scores: The metrics.
    """

    model_id: str
    version: int
    split: str
    skipped: int
    scores: Scores

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "model_id": self.model_id,
            "version": self.version,
            "split": self.split,
            "skipped": self.skipped,
            **self.scores.to_dict(),
        }


def evaluate_model(
    project: Project,
    number: int,
    version: int | None = None,
    *,
    all_images: bool = False,
    progress: Progress | None = None,
    batch_size: int = 32,
) -> Evaluation:
    """Measures a model on a dataset version of its project.

    Images are run through the exported graph with the model's own temperature
    and thresholds, exactly as a predictor would.

    Args:
        project: The project.
        number: The model's number.
        version: Dataset version number; the newest when None.
        all_images: Every image of the version rather than its test split
            (augmented copies are never used).
        progress: Called with ``("evaluate", done, total)``.
        batch_size: Images per call of the graph.

    Raises:
        NotFoundError: No such model or version.
        ValidationError: No image of the version has a label the model knows.
    """
    model = get_model(project, number)
    found = project.version(version)
    metadata = model.metadata
    items = [
        item for item in found.items(None if all_images else "test") if item.copy == 0
    ]
    names = list(metadata.class_names)
    known = [item for item in items if set(item.labels) <= set(names) and item.labels]
    if items and not known:
        raise ValidationError(
            f"no image of version {found.id} has a label that model "
            f"{model.model_id} knows ({', '.join(names)})"
        )
    logits = _run_graph(model, found, known, progress, batch_size)
    multi = metadata.project_type.is_multi_label
    labels: np.ndarray
    if multi:
        labels = np.zeros((len(known), len(names)), dtype=np.float32)
        for row, item in enumerate(known):
            for label in item.labels:
                labels[row, names.index(label)] = 1.0
    else:
        labels = np.array([names.index(item.labels[0]) for item in known], np.int64)
    decision = Decision(
        tuple(names),
        multi,
        metadata.temperature,
        metadata.rejection_threshold,
        metadata.class_thresholds,
    )
    return Evaluation(
        model_id=model.model_id,
        version=found.number,
        split="all" if all_images else "test",
        skipped=len(items) - len(known),
        scores=score_outputs(logits, labels, decision),
    )


def _run_graph(
    model: TrainedModel,
    version: Any,
    items: list[Any],
    progress: Progress | None,
    batch_size: int,
) -> np.ndarray:
    session = create_session(model.path / "model.onnx")
    width, height = model.metadata.input_size
    model_input = ModelInput(size=(width, height))
    chunks = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        pixels = model_input.batch(version.load(item) for item in batch)
        (logits,) = session.run(["logits"], {INPUT_NAME: pixels})
        chunks.append(np.asarray(logits, dtype=np.float64))
        report(progress, "evaluate", start + len(batch), len(items))
    classes = len(model.metadata.class_names)
    return np.concatenate(chunks) if chunks else np.zeros((0, classes))


def _row(project: Project, number: int) -> ModelRow:
    with project.workspace.sessions() as session:
        row = session.scalar(
            select(ModelRow).where(
                ModelRow.project_id == project.id, ModelRow.number == number
            )
        )
    if row is None:
        raise NotFoundError(
            f"project {project.slug!r} has no model {number}; list them with "
            f"`pigeonhole models list {project.slug}`"
        )
    return row


def _model(project: Project, row: ModelRow) -> TrainedModel:
    path = project.workspace.root / row.path
    package = ModelPackage.load(path, verify=False)
    return TrainedModel(
        project=project.slug,
        number=row.number,
        path=path,
        metadata=package.metadata,
        metrics=dict(row.metrics or {}),
        mode=row.mode,
        backbone=row.backbone,
        version=row.version_number,
        run_id=row.run_id,
        created_at=row.created_at,
    )

"""The models a server has loaded: found by model id, loaded once, shared by requests.

A model id is ``<project-slug>/<n>``, the n-th model of the project. Its package
folder is the ``path`` of its row in the ``models`` table (relative paths are taken
from the workspace root), or else ``<workspace>/models/<slug>/<n>``. A loaded
`Predictor` is kept until it is removed, the cache is cleared, or it is the least
recently used one when the cache is full.

Loading imports ONNX Runtime but never torch, so a serving install stays small.

Example:
    >>> models = LoadedModels(workspace, capacity=4)  # doctest: +SKIP
    >>> models.get("bananas/3").predict(b"...").top  # doctest: +SKIP
    'ripe'
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from pigeonhole.domain import ProjectType
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.storage.database import ModelRow, ProjectRow
from pigeonhole.workspace import Workspace

if TYPE_CHECKING:
    from pigeonhole.inference.predictor import Predictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """A parsed model id.

    Attributes:
        slug: The project's slug.
        number: The model's number within the project, from 1.
    """

    slug: str
    number: int

    @property
    def model_id(self) -> str:
        """``<slug>/<number>``."""
        return f"{self.slug}/{self.number}"

    @classmethod
    def parse(cls, model_id: str) -> ModelRef:
        """Reads ``<project-slug>/<n>``.

        Raises:
            ValidationError: Not two parts, or ``n`` not a whole number from 1.
        """
        slug, _, number = model_id.strip().strip("/").partition("/")
        if not slug or not number.isdigit() or int(number) < 1:
            raise ValidationError(
                f"model id {model_id!r} is not '<project-slug>/<n>' with n a model "
                "number from 1, such as 'bananas/3'"
            )
        return cls(slug, int(number))


def package_folder(workspace: Workspace, ref: ModelRef) -> Path:
    """The package folder of the model ``ref``.

    Raises:
        NotFoundError: No such project, model or package folder.
    """
    with workspace.sessions() as session:
        project = session.scalars(
            select(ProjectRow).where(ProjectRow.slug == ref.slug)
        ).first()
        if project is None:
            raise NotFoundError(
                f"no project with slug {ref.slug!r} for model {ref.model_id!r}; "
                "model ids are '<project-slug>/<n>'"
            )
        row = session.scalars(
            select(ModelRow).where(
                ModelRow.project_id == project.id, ModelRow.number == ref.number
            )
        ).first()
    default = workspace.root / "models" / ref.slug / str(ref.number)
    folder = default
    if row is not None and row.path:
        stored = Path(row.path)
        folder = stored if stored.is_absolute() else workspace.root / stored
    if not (folder / "model.json").is_file():
        known = "has no such model" if row is None else "has lost its package folder"
        raise NotFoundError(
            f"model {ref.model_id!r} not found: project {ref.slug!r} {known}; "
            "`pigeonhole models list` shows the trained models"
        )
    return folder


@dataclass(frozen=True)
class ModelSummary:
    """What the Roboflow model registry tells a client about a loaded model."""

    model_id: str
    multi_label: bool
    input_width: int
    input_height: int


class LoadedModels:
    """A thread-safe, least-recently-used cache of predictors by model id.

    Args:
        workspace: The workspace whose models are served.
        capacity: How many models stay loaded at most.
        threads: Threads per model inside ONNX Runtime; None uses the free cores.
    """

    def __init__(
        self, workspace: Workspace, *, capacity: int = 8, threads: int | None = None
    ) -> None:
        self.workspace = workspace
        self.capacity = max(1, capacity)
        self.threads = threads
        self._predictors: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, model_id: str) -> Predictor:
        """The predictor for ``model_id``, loading it on first use.

        Raises:
            ValidationError: A malformed model id.
            NotFoundError: No such model.
            ModelPackageError: The package is incomplete or corrupt.
        """
        ref = ModelRef.parse(model_id)
        key = ref.model_id
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
            loading = self._loading.setdefault(key, threading.Lock())
        # One thread loads; the others asking for the same model wait for it.
        with loading:
            with self._lock:
                if key in self._predictors:
                    return self._predictors[key]
            predictor = self._load(ref)
            with self._lock:
                self._predictors[key] = predictor
                self._loading.pop(key, None)
                while len(self._predictors) > self.capacity:
                    evicted, _ = self._predictors.popitem(last=False)
                    logger.info("unloaded model %s (cache full)", evicted)
        return predictor

    def remove(self, model_id: str) -> bool:
        """Unloads ``model_id``; whether it was loaded."""
        key = ModelRef.parse(model_id).model_id
        with self._lock:
            return self._predictors.pop(key, None) is not None

    def clear(self) -> None:
        """Unloads every model."""
        with self._lock:
            self._predictors.clear()

    def loaded(self) -> list[ModelSummary]:
        """The loaded models, least recently used first."""
        with self._lock:
            predictors = list(self._predictors.items())
        return [summary(model_id, predictor) for model_id, predictor in predictors]

    def _load(self, ref: ModelRef) -> Predictor:
        from pigeonhole.inference.predictor import Predictor

        folder = package_folder(self.workspace, ref)
        return Predictor.load(folder, threads=self.threads)


def summary(model_id: str, predictor: Predictor) -> ModelSummary:
    """The registry entry of a loaded model."""
    width, height = predictor.metadata.input_size
    return ModelSummary(
        model_id=model_id,
        multi_label=predictor.metadata.project_type == ProjectType.MULTI_LABEL,
        input_width=width,
        input_height=height,
    )

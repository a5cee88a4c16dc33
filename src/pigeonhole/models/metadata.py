"""What a model says about itself: the contents of ``model.json``.

`ModelMetadata` is read by every consumer of a model (the predictor, the server, the
web UI) and written once, by `pigeonhole.models.package.write_package`. Readers
ignore keys they do not know, so a newer Pigeonhole can add fields without breaking
older readers of the same format version; a missing required key is an error that
names it.

Example:
    >>> from pigeonhole.models.metadata import ModelMetadata
    >>> data = json.loads(Path("model.json").read_text())  # doctest: +SKIP
    >>> ModelMetadata.from_dict(data).input_size  # doctest: +SKIP
    (224, 224)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pigeonhole.domain import ProjectType
from pigeonhole.errors import PigeonholeError, ValidationError
from pigeonhole.preprocessing import Preprocessing

logger = logging.getLogger(__name__)

#: Version of the folder layout and ``model.json`` schema this code writes.
FORMAT_VERSION = 1

METADATA_FILE = "model.json"


class ModelPackageError(PigeonholeError):
    """A model package is missing files, is corrupt, or was altered after export."""

    code = "bad_model_package"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _package_version() -> str:
    from pigeonhole import __version__

    return __version__


@dataclass(frozen=True)
class ModelMetadata:
    """Everything ``model.json`` says about a model.

    Lists (as read from JSON) given for ``class_names`` and ``class_thresholds`` are
    stored as tuples, and a string ``project_type`` as a `ProjectType`.

    Calibrated confidences are ``softmax(logits / temperature)`` for single-label
    models and ``sigmoid(logits / temperature)`` per class for multi-label ones. The
    conformal quantile ``q`` is for the score ``1 - p(true class)`` (single-label):
    the prediction set is every class with ``p >= 1 - q``, which covers the true
    class with probability ``conformal_coverage``.

    Attributes:
        model_id: ``"<project-slug>/<n>"``, the n-th model of the project.
        project_slug: Slug of the project the model was trained for.
        project_type: Single-label or multi-label.
        class_names: Class names in the order of the logits.
        backbone: ``name``, ``weights_sha256`` and ``licence`` of the backbone.
        input: The model input (``size`` as [width, height], ``mean``, ``std``).
        preprocessing: The dataset version's `Preprocessing.to_dict`.
        dataset_version: ``id`` and ``manifest_hash`` of the dataset version.
        temperature: Divisor of the logits before softmax or sigmoid (> 0).
        rejection_threshold: Single-label: no answer when the calibrated top
            confidence is below this (0 answers always).
        class_thresholds: Multi-label: one threshold per class on its calibrated
            confidence; empty means 0.5 for every class. Empty for single-label.
        conformal_quantile: The calibrated quantile ``q`` described above, or None.
        conformal_coverage: The coverage ``q`` was calibrated for, or None.
        ood: Out-of-distribution detector: ``kind`` and ``threshold`` (and its own
            settings), or empty when the model has none.
        metrics: Evaluation metrics, by name.
        training: The resolved training config and run facts.
        pigeonhole_version: Version of Pigeonhole that exported the model.
        created_at: ISO 8601 time of export.
        onnx_sha256: Hex sha256 of ``model.onnx``; empty until `write_package` fills
            it in.
        format_version: Version of this schema.
    """

    model_id: str
    project_slug: str
    project_type: ProjectType
    class_names: tuple[str, ...]
    backbone: dict[str, Any]
    input: dict[str, Any]
    preprocessing: dict[str, Any]
    dataset_version: dict[str, Any]
    temperature: float = 1.0
    rejection_threshold: float = 0.0
    class_thresholds: tuple[float, ...] = ()
    conformal_quantile: float | None = None
    conformal_coverage: float | None = None
    ood: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    pigeonhole_version: str = field(default_factory=_package_version)
    created_at: str = field(default_factory=_now)
    onnx_sha256: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        set_field = partial(object.__setattr__, self)
        set_field("project_type", ProjectType.parse(self.project_type))
        set_field("class_names", _checked_names(self.class_names))
        set_field("input", _checked_input(self.input))
        set_field(
            "preprocessing", Preprocessing.from_dict(self.preprocessing).to_dict()
        )
        for name in ("backbone", "dataset_version", "ood", "metrics", "training"):
            set_field(name, _checked_mapping(name, getattr(self, name)))
        temperature = _number("temperature", self.temperature)
        if not 0 < temperature < math.inf:
            raise ValidationError(
                f"temperature={self.temperature!r} must be a positive finite number"
            )
        set_field("temperature", temperature)
        set_field(
            "rejection_threshold",
            _fraction("rejection_threshold", self.rejection_threshold),
        )
        set_field("class_thresholds", self._checked_thresholds())
        for name in ("conformal_quantile", "conformal_coverage"):
            if getattr(self, name) is not None:
                set_field(name, _fraction(name, getattr(self, name)))

    def _checked_thresholds(self) -> tuple[float, ...]:
        thresholds = tuple(
            _fraction("class_thresholds", value) for value in self.class_thresholds
        )
        if thresholds and not self.project_type.is_multi_label:
            raise ValidationError(
                "class_thresholds are for multi-label models; leave them empty for "
                f"a {self.project_type.value} model"
            )
        if thresholds and len(thresholds) != len(self.class_names):
            raise ValidationError(
                f"class_thresholds has {len(thresholds)} values for "
                f"{len(self.class_names)} classes; give one per class"
            )
        return thresholds

    @property
    def input_size(self) -> tuple[int, int]:
        """The model's input ``(width, height)`` in pixels."""
        width, height = self.input["size"]
        return int(width), int(height)

    @property
    def preprocessing_recipe(self) -> Preprocessing:
        """The dataset version's preprocessing as a `Preprocessing`."""
        return Preprocessing.from_dict(self.preprocessing)

    def to_dict(self) -> dict[str, Any]:
        """The metadata as JSON-safe values; `from_dict` reads it back."""
        data = dataclasses.asdict(self)
        data["project_type"] = self.project_type.value
        data["class_names"] = list(self.class_names)
        data["class_thresholds"] = list(self.class_thresholds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """Reads metadata written by `to_dict`.

        Keys this version does not know are ignored, so a newer Pigeonhole may add
        fields without breaking older readers of the same format version.

        Raises:
            ModelPackageError: ``data`` is not a mapping, lacks a required key, was
                written in a newer format, or holds a value this class refuses.
        """
        if not isinstance(data, Mapping):
            raise ModelPackageError(
                f"model metadata must be a JSON object, not {type(data).__name__}"
            )
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelPackageError(
                f"model format_version={version!r} is newer than this Pigeonhole "
                f"reads ({FORMAT_VERSION}); upgrade Pigeonhole to load this model"
            )
        known = {item.name for item in dataclasses.fields(cls)}
        missing = sorted(name for name in _REQUIRED_KEYS if name not in data)
        if missing:
            raise ModelPackageError(
                f"model metadata lacks required key(s) {', '.join(missing)}; the "
                "package is incomplete or damaged: export the model again"
            )
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            logger.debug("ignoring unknown model metadata keys: %s", unknown)
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except (ValidationError, TypeError, ValueError) as error:
            raise ModelPackageError(f"model metadata is invalid: {error}") from None


_REQUIRED_KEYS = frozenset(
    {
        "model_id",
        "project_slug",
        "project_type",
        "class_names",
        "backbone",
        "input",
        "preprocessing",
        "dataset_version",
        "temperature",
        "rejection_threshold",
        "onnx_sha256",
        "format_version",
    }
)


def read_metadata(path: Path) -> ModelMetadata:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelPackageError(
            f"{path.parent}: {METADATA_FILE} is missing; this is not a model package "
            "or its export did not finish"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelPackageError(f"{path}: cannot be read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelPackageError(
            f"{path}: not valid JSON ({error}); export the model again"
        ) from None
    try:
        return ModelMetadata.from_dict(data)
    except ModelPackageError as error:
        raise ModelPackageError(f"{path}: {error}") from None


def _checked_names(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ValidationError(f"class_names={names!r} must be a list of strings")
    result = tuple(names)
    if not result:
        raise ValidationError("class_names is empty; a model needs at least one class")
    if len(set(result)) != len(result):
        raise ValidationError(f"class_names={list(result)!r} has duplicate names")
    return result


def _checked_input(value: object) -> dict[str, Any]:
    error = ValidationError(
        f"input={value!r} must hold size [width, height] in pixels and three-value "
        "mean and std"
    )
    if not isinstance(value, Mapping) or not {"size", "mean", "std"} <= set(value):
        raise error
    size, mean, std = value["size"], value["mean"], value["std"]
    if not isinstance(size, Sequence) or len(size) != 2:
        raise error
    if not all(isinstance(side, int) and side > 0 for side in size):
        raise error
    for triple in (mean, std):
        if not isinstance(triple, Sequence) or len(triple) != 3:
            raise error
    return {
        **value,
        "size": [int(side) for side in size],
        "mean": [_number("input mean", item) for item in mean],
        "std": [_number("input std", item) for item in std],
    }


def _checked_mapping(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{name}={value!r} must be a mapping (a JSON object), not "
            f"{type(value).__name__}"
        )
    return dict(value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(f"{name}={value!r} must be a number")
    return float(value)


def _fraction(name: str, value: object) -> float:
    number = _number(name, value)
    if not 0.0 <= number <= 1.0:
        raise ValidationError(f"{name}={value!r} must be a number from 0 to 1")
    return number

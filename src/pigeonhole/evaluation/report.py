"""A short Markdown model card, written from a model's recorded metadata.

The card ends with "Known weaknesses", drawn from the numbers alone: classes whose
F1 is well below the macro average, classes with few training images, calibration
still off after temperature scaling, a small test split, classes the test split
cannot measure, and a rejection threshold that leaves most images unanswered.

Example:
    >>> card = model_card({"model_id": "m-1", "project": "birds",
    ...                    "split_counts": {"train": 70, "valid": 20, "test": 10}})
    >>> card.splitlines()[0]
    '# Model card: m-1'
    >>> "test split has only 10 images" in card
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: A class is weak when its F1 is this far below the macro F1.
WEAK_F1_GAP = 0.15
#: Fewer training images than this make a class's results fragile.
FEW_TRAIN_IMAGES = 20
#: An ECE above this, after calibration, is worth a warning.
ECE_LIMIT = 0.05
#: A test split smaller than this gives noisy metrics.
SMALL_TEST_SPLIT = 50
#: A rejection threshold answering less than this share is worth a warning.
LOW_COVERAGE = 0.5

_SPLITS = ("train", "valid", "test")
_OVERVIEW = (
    ("project", "Project"),
    ("project_type", "Project type"),
    ("backbone", "Backbone"),
    ("training_mode", "Training mode"),
    ("dataset_version_id", "Dataset version"),
    ("manifest_hash", "Manifest hash"),
    ("package_version", "Pigeonhole version"),
    ("created_at", "Created"),
)
_SINGLE_SUMMARY = (
    ("accuracy", "Accuracy"),
    ("top5_accuracy", "Top-5 accuracy"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
    ("macro_f1", "Macro F1"),
)
_MULTI_SUMMARY = (
    ("micro_f1", "Micro F1"),
    ("macro_f1", "Macro F1"),
    ("mean_average_precision", "mAP"),
    ("exact_match_ratio", "Exact-match ratio"),
)
_COLUMNS = {"f1": "F1", "average_precision": "AP"}


def model_card(metadata: Mapping[str, Any]) -> str:
    """Writes a Markdown model card; any missing key just leaves its part out.

    Args:
        metadata: A mapping that may hold ``model_id``, ``project``,
            ``project_type``, ``class_names``, ``backbone``, ``training_mode``,
            ``dataset_version_id``, ``manifest_hash``, ``package_version``,
            ``created_at``; ``recipe`` (a mapping with ``preprocessing`` and
            ``augmentation``, each a mapping or text); ``split_counts`` (split name
            to image count); ``train_class_counts`` (class name to training
            images); ``test_metrics`` (a ``to_dict()`` of
            :class:`~pigeonhole.evaluation.metrics.SingleLabelMetrics` or
            :class:`~pigeonhole.evaluation.metrics.MultiLabelMetrics`);
            ``calibration`` (``ece_before``, ``ece_after``, ``temperature``);
            ``rejection`` (``threshold``, ``coverage`` and optionally ``accuracy``,
            as from :func:`~pigeonhole.evaluation.metrics.rejection_metrics`).

    Returns:
        The card, ending with a newline.
    """
    sections = [
        _overview(metadata),
        _classes(metadata.get("class_names")),
        _recipe(metadata.get("recipe")),
        _splits(metadata.get("split_counts")),
        _test_metrics(metadata.get("test_metrics")),
        _calibration(metadata.get("calibration")),
        _rejection(metadata.get("rejection")),
        _weakness_section(metadata),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _overview(metadata: Mapping[str, Any]) -> list[str]:
    lines = [f"# Model card: {metadata.get('model_id', 'unnamed model')}", ""]
    lines += [
        f"- {title}: {_overview_value(key, metadata[key])}"
        for key, title in _OVERVIEW
        if metadata.get(key) is not None
    ]
    return lines if len(lines) > 2 else lines[:1]


def _overview_value(key: str, value: Any) -> str:
    return (
        f"`{value}`" if key in ("manifest_hash", "dataset_version_id") else str(value)
    )


def _classes(class_names: Any) -> list[str]:
    if not class_names:
        return []
    names = ", ".join(_cell(str(name)) for name in class_names)
    return ["## Classes", "", f"{len(class_names)} classes: {names}."]


def _recipe(recipe: Any) -> list[str]:
    if not isinstance(recipe, Mapping):
        return []
    lines = [
        f"- {part.capitalize()}: {_describe(recipe[part])}"
        for part in ("preprocessing", "augmentation")
        if recipe.get(part) is not None
    ]
    return ["## Recipe", "", *lines] if lines else []


def _splits(split_counts: Any) -> list[str]:
    if not isinstance(split_counts, Mapping) or not split_counts:
        return []
    names = [name for name in _SPLITS if name in split_counts]
    names += [name for name in split_counts if name not in _SPLITS]
    rows = [f"| {name} | {split_counts[name]} |" for name in names]
    return ["## Data", "", "| split | images |", "|---|---|", *rows]


def _test_metrics(metrics: Any) -> list[str]:
    if not isinstance(metrics, Mapping):
        return []
    multi = metrics.get("kind") == "multi-label" or "micro_f1" in metrics
    summary = _MULTI_SUMMARY if multi else _SINGLE_SUMMARY
    lines = ["## Test metrics", ""]
    if metrics.get("count") is not None:
        lines.append(f"Measured on {metrics['count']} test images.")
        lines.append("")
    lines += [
        f"- {title}: {_number(metrics[key])}"
        for key, title in summary
        if metrics.get(key) is not None
    ]
    return lines + _per_class_table(metrics.get("per_class"), multi)


def _per_class_table(per_class: Any, multi: bool) -> list[str]:
    if not isinstance(per_class, Mapping) or not per_class:
        return []
    keys = ["precision", "recall", "f1", "support"]
    if multi:
        keys += ["average_precision", "threshold"]
    header = "| class | " + " | ".join(_COLUMNS.get(key, key) for key in keys) + " |"
    rows = [
        f"| {_cell(str(name))} | "
        + " | ".join(_number(scores.get(key)) for key in keys)
        + " |"
        for name, scores in per_class.items()
    ]
    return ["", header, "|---" * (len(keys) + 1) + "|", *rows]


def _calibration(calibration: Any) -> list[str]:
    if not isinstance(calibration, Mapping):
        return []
    before, after = calibration.get("ece_before"), calibration.get("ece_after")
    temperature = calibration.get("temperature")
    lines = []
    if before is not None and after is not None:
        lines.append(f"- ECE: {_number(before)} before, {_number(after)} after")
    elif before is not None or after is not None:
        lines.append(f"- ECE: {_number(after if before is None else before)}")
    if temperature is not None:
        lines.append(f"- Temperature: {_number(temperature)}")
    return ["## Calibration", "", *lines] if lines else []


def _rejection(rejection: Any) -> list[str]:
    if not isinstance(rejection, Mapping):
        return []
    lines = []
    if rejection.get("threshold") is not None:
        lines.append(
            f"- Threshold (top-1 confidence): {_number(rejection['threshold'])}"
        )
    if rejection.get("coverage") is not None:
        lines.append(f"- Coverage: {rejection['coverage']:.1%} of images answered")
    if rejection.get("accuracy") is not None:
        lines.append(f"- Accuracy on answered images: {_number(rejection['accuracy'])}")
    return ["## Rejection", "", *lines] if lines else []


def _weakness_section(metadata: Mapping[str, Any]) -> list[str]:
    found = _weaknesses(metadata)
    lines = [f"- {weakness}" for weakness in found] or [
        "None found by the automatic checks (per-class F1, training images per "
        "class, calibration, test split size, rejection coverage)."
    ]
    return ["## Known weaknesses", "", *lines]


def _weaknesses(metadata: Mapping[str, Any]) -> list[str]:
    metrics = metadata.get("test_metrics")
    metrics = metrics if isinstance(metrics, Mapping) else {}
    found = _weak_classes(metrics)
    found += _few_training_images(metadata.get("train_class_counts"))
    found += _calibration_weakness(metadata.get("calibration"))
    found += _test_size_weakness(metadata.get("split_counts"), metrics)
    unmeasured = metrics.get("classes_without_positives") or []
    if unmeasured:
        found.append(
            f"No test image has {_listing(unmeasured)}, so "
            f"{'it is' if len(unmeasured) == 1 else 'they are'} not measured."
        )
    rejection = metadata.get("rejection")
    coverage = rejection.get("coverage") if isinstance(rejection, Mapping) else None
    if coverage is not None and coverage < LOW_COVERAGE:
        found.append(
            f"The rejection threshold answers only {coverage:.1%} of images; the "
            "rest come back as not sure."
        )
    return found


def _weak_classes(metrics: Mapping[str, Any]) -> list[str]:
    macro, per_class = metrics.get("macro_f1"), metrics.get("per_class")
    if macro is None or not isinstance(per_class, Mapping):
        return []
    return [
        f"{_cell(str(name))}: F1 {_number(scores['f1'])}, well below the macro "
        f"average {_number(macro)}."
        for name, scores in per_class.items()
        if _is_weak(scores, macro)
    ]


def _is_weak(scores: Mapping[str, Any], macro_f1: float) -> bool:
    f1 = scores.get("f1")
    return (
        bool(scores.get("support")) and f1 is not None and f1 < macro_f1 - WEAK_F1_GAP
    )


def _few_training_images(train_class_counts: Any) -> list[str]:
    if not isinstance(train_class_counts, Mapping):
        return []
    few = {name: n for name, n in train_class_counts.items() if n < FEW_TRAIN_IMAGES}
    if not few:
        return []
    listed = ", ".join(f"{_cell(str(name))} ({n})" for name, n in few.items())
    return [f"Fewer than {FEW_TRAIN_IMAGES} training images: {listed}."]


def _calibration_weakness(calibration: Any) -> list[str]:
    if not isinstance(calibration, Mapping):
        return []
    ece = calibration.get("ece_after", calibration.get("ece_before"))
    if ece is None or ece <= ECE_LIMIT:
        return []
    return [
        f"Confidences are poorly calibrated: ECE {_number(ece)} is above "
        f"{ECE_LIMIT}, so treat confidence as a ranking, not a probability."
    ]


def _test_size_weakness(split_counts: Any, metrics: Mapping[str, Any]) -> list[str]:
    size = split_counts.get("test") if isinstance(split_counts, Mapping) else None
    size = metrics.get("count") if size is None else size
    if size is None or size >= SMALL_TEST_SPLIT:
        return []
    return [
        f"The test split has only {size} images, so every test metric has a wide "
        "margin of error."
    ]


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or "none"
    return str(value)


def _listing(names: Any) -> str:
    return ", ".join(_cell(str(name)) for name in names)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _cell(text: str) -> str:
    # A bar would end a table cell early.
    return text.replace("|", "\\|")

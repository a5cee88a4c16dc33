"""Measuring a model's logits on held-out images: metrics, calibration, plots.

Used on the test split when a run ends, and again by
`pigeonhole.training.registry.evaluate_model` on another dataset version. Every
choice (temperature, thresholds) is taken as given here; nothing is fitted.

Imports no torch.

Example:
    >>> scores = score_outputs(logits, labels, decision, folder)  # doctest: +SKIP
    >>> scores.summary["accuracy"]  # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pigeonhole.evaluation.calibration import reliability_curve, sigmoid, softmax
from pigeonhole.evaluation.metrics import (
    multi_label_metrics,
    rejection_metrics,
    single_label_metrics,
)
from pigeonhole.evaluation.plots import (
    confusion_matrix_plot,
    reliability_plot,
    training_curves_plot,
)

logger = logging.getLogger(__name__)

PLOTS_FOLDER = "plots"


@dataclass(frozen=True)
class Decision:
    """How a model turns logits into answers.

    Attributes:
        class_names: Class names in logit order.
        multi_label: Sigmoid per class rather than softmax.
        temperature: Divisor of the logits.
        rejection_threshold: Single-label: below this top confidence, no answer.
        class_thresholds: Multi-label: one threshold per class.
    """

    class_names: tuple[str, ...]
    multi_label: bool
    temperature: float = 1.0
    rejection_threshold: float = 0.0
    class_thresholds: tuple[float, ...] = ()

    def probabilities(
        self, logits: np.ndarray, temperature: float | None = None
    ) -> Any:
        """Calibrated confidences ``[N, C]`` (raw ones with ``temperature=1``)."""
        scale = self.temperature if temperature is None else temperature
        if self.multi_label:
            return sigmoid(logits, scale)
        return softmax(logits, scale)


@dataclass(frozen=True)
class Scores:
    """What `score_outputs` measured.

    Attributes:
        metrics: The full metrics ``to_dict()``.
        summary: The headline numbers, flat, for listings and comparisons.
        calibration: ``temperature``, ``ece_before`` and ``ece_after``
            (single-label), with both reliability curves.
        rejection: What the rejection threshold does (single-label), or None.
        plots: File names of the plots written, relative to the plots' parent.
    """

    metrics: dict[str, Any]
    summary: dict[str, Any]
    calibration: dict[str, Any] = field(default_factory=dict)
    rejection: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "summary": self.summary,
            "metrics": self.metrics,
            "calibration": self.calibration,
            "rejection": self.rejection,
            "plots": self.plots,
        }


def score_outputs(
    logits: np.ndarray,
    labels: np.ndarray,
    decision: Decision,
    folder: Path | None = None,
) -> Scores:
    """Measures logits against the true labels.

    Args:
        logits: ``[N, C]`` raw logits.
        labels: Class_ids ``[N]``, or a 0/1 matrix ``[N, C]`` for multi-label.
        decision: The model's temperature and thresholds.
        folder: Where to write ``plots/*.png``; no plots when None.

    Returns:
        The metrics; empty when there are no images (with a warning).
    """
    if len(logits) == 0:
        logger.warning("no images to evaluate on; the model has no test metrics")
        return Scores(metrics={}, summary={"images": 0})
    names = decision.class_names
    probabilities = decision.probabilities(logits)
    plots: list[str] = []
    if decision.multi_label:
        multi = multi_label_metrics(
            labels,
            probabilities,
            decision.class_thresholds or [0.5] * len(names),
            names,
        )
        summary: dict[str, Any] = {
            "images": multi.count,
            "micro_f1": multi.micro_f1,
            "macro_f1": multi.macro_f1,
            "mean_average_precision": multi.mean_average_precision,
            "exact_match_ratio": multi.exact_match_ratio,
        }
        return Scores(metrics=multi.to_dict(), summary=summary)
    single = single_label_metrics(labels, probabilities, names)
    raw = decision.probabilities(logits, 1.0)
    before, after = (
        reliability_curve(raw, labels),
        reliability_curve(probabilities, labels),
    )
    rejection = dict(
        rejection_metrics(labels, probabilities, decision.rejection_threshold)
    )
    if folder is not None:
        plots_folder = folder / PLOTS_FOLDER
        plots_folder.mkdir(parents=True, exist_ok=True)
        confusion_matrix_plot(
            single.confusion_matrix, names, plots_folder / "confusion_matrix.png"
        )
        reliability_plot(
            before, after, plots_folder / "reliability.png", before.ece, after.ece
        )
        plots += ["plots/confusion_matrix.png", "plots/reliability.png"]
    summary = {
        "images": single.count,
        "accuracy": single.accuracy,
        "top5_accuracy": single.top5_accuracy,
        "macro_f1": single.macro_f1,
        "ece_before": before.ece,
        "ece_after": after.ece,
        "rejection_threshold": decision.rejection_threshold,
        "answered": rejection["coverage"],
        "answered_accuracy": rejection["accuracy"],
    }
    calibration = {
        "temperature": decision.temperature,
        "ece_before": before.ece,
        "ece_after": after.ece,
        "reliability_before": before.to_dict(),
        "reliability_after": after.to_dict(),
    }
    return Scores(single.to_dict(), summary, calibration, rejection, plots)


def plot_history(history: Sequence[dict[str, Any]], folder: Path) -> list[str]:
    """Draws the training curves; fast-mode rows (``phase``) are drawn by index."""
    rows = [
        {"epoch": row.get("epoch", row.get("phase", index + 1)), **row}
        for index, row in enumerate(history)
    ]
    rows = [
        {key: float(value) for key, value in row.items() if _is_number(value)}
        for row in rows
    ]
    if not rows:
        return []
    plots_folder = folder / PLOTS_FOLDER
    plots_folder.mkdir(parents=True, exist_ok=True)
    training_curves_plot(rows, plots_folder / "training_curves.png")
    return ["plots/training_curves.png"]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

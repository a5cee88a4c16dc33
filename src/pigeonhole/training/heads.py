"""The fast mode's head: a small classifier fitted on cached backbone embeddings.

The head standardises each embedding dimension with the train split's mean and
spread, then applies a linear layer (or a one-hidden-layer MLP). It is fitted
full-batch with L-BFGS (linear) or Adam (MLP) for each weight decay of a small grid;
the valid split picks the weight decay (lowest valid loss). One fit of 1,000
embeddings takes a fraction of a second on 2 cores, so the sweep costs little.

Single-label heads minimise softmax cross-entropy (optionally label-smoothed),
multi-label heads a binary cross-entropy per class. With class weighting, a class's
loss is weighted by the inverse of its train frequency (single-label), or a class's
positives by its negatives per positive (multi-label).

Example:
    >>> head, fit = fit_head(x, y, vx, vy, multi_label=False)  # doctest: +SKIP
    >>> fit.weight_decay  # doctest: +SKIP
    0.001
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pigeonhole.errors import ValidationError
from pigeonhole.training import RunCancelled

logger = logging.getLogger(__name__)

#: Weight decays tried by default (L2 penalty on the mean loss).
WEIGHT_DECAYS = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1)
HEAD_KINDS = ("linear", "mlp")


@dataclass(frozen=True)
class HeadConfig:
    """How to fit a head on embeddings.

    Attributes:
        kind: ``linear`` or ``mlp`` (one hidden layer with ReLU and dropout).
        weight_decays: The grid of L2 penalties; the valid split chooses one.
        class_weighting: Weight the loss by inverse class frequency.
        label_smoothing: Cross-entropy label smoothing, single-label only.
        hidden: Width of the MLP's hidden layer.
        max_steps: Optimiser steps per fit (L-BFGS iterations or Adam steps).
        seed: Seeds the initial weights and dropout.

    Raises:
        ValidationError: A value out of range.
    """

    kind: str = "linear"
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS
    class_weighting: bool = True
    label_smoothing: float = 0.0
    hidden: int = 256
    max_steps: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValidationError(
                f"head kind={self.kind!r} is not one of: {', '.join(HEAD_KINDS)}"
            )
        decays = tuple(float(value) for value in self.weight_decays)
        if not decays or not all(0 <= value < math.inf for value in decays):
            raise ValidationError(
                f"weight_decays={self.weight_decays!r} must be one or more finite "
                "numbers of 0 or more"
            )
        object.__setattr__(self, "weight_decays", decays)
        if not 0 <= self.label_smoothing <= 0.5:
            raise ValidationError(
                f"label_smoothing={self.label_smoothing!r} must be from 0 to 0.5"
            )
        if self.hidden < 1 or self.max_steps < 1:
            raise ValidationError(
                f"hidden={self.hidden!r} and max_steps={self.max_steps!r} must be "
                "1 or more"
            )


@dataclass(frozen=True)
class HeadFit:
    """What the sweep found.

    Attributes:
        weight_decay: The chosen weight decay.
        history: One row per weight decay tried: ``phase`` (its index, from 1),
            ``weight_decay``, ``train_loss``, ``valid_loss`` and ``valid_metric``
            (accuracy, or micro-F1 at 0.5 for multi-label).
    """

    weight_decay: float
    history: list[dict[str, float]] = field(default_factory=list)


class Standardise(nn.Module):
    """Subtracts a per-dimension mean and divides by a per-dimension spread."""

    mean: Tensor
    scale: Tensor

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, embedding: Tensor) -> Tensor:
        """Standardises embeddings ``[N, D]``."""
        return (embedding - self.mean) / self.scale


def build_head(
    kind: str, mean: np.ndarray, scale: np.ndarray, classes: int, hidden: int = 256
) -> nn.Sequential:
    """A new head: standardisation then a linear layer or an MLP."""
    dimension = len(mean)
    layers: list[nn.Module] = [Standardise(mean, scale)]
    if kind == "mlp":
        layers += [nn.Linear(dimension, hidden), nn.ReLU(), nn.Dropout(0.2)]
        dimension = hidden
    layers.append(nn.Linear(dimension, classes))
    return nn.Sequential(*layers)


def fit_head(
    train_x: np.ndarray,
    train_y: np.ndarray,
    valid_x: np.ndarray,
    valid_y: np.ndarray,
    *,
    multi_label: bool,
    config: HeadConfig | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[nn.Sequential, HeadFit]:
    """Fits a head for each weight decay and keeps the best on the valid split.

    Args:
        train_x: Train embeddings ``[N, D]``.
        train_y: Train class_ids ``[N]``, or a 0/1 matrix ``[N, C]`` when
            ``multi_label``.
        valid_x: Valid embeddings ``[M, D]``.
        valid_y: Valid labels, shaped like ``train_y``.
        multi_label: Sigmoid outputs with binary cross-entropy.
        config: Settings; `HeadConfig`'s defaults when omitted.
        cancelled: Asked between fits; True raises `RunCancelled`.

    Returns:
        The chosen head in eval mode, and the sweep's results.

    Raises:
        ValidationError: Empty train or valid embeddings, or shapes that disagree.
        RunCancelled: ``cancelled()`` returned True.
    """
    config = config or HeadConfig()
    data = _Data.make(train_x, train_y, valid_x, valid_y, multi_label)
    best: tuple[float, nn.Sequential, float] | None = None
    history: list[dict[str, float]] = []
    previous: nn.Sequential | None = None
    # Strongest decay first: each linear fit starts from the last one's solution,
    # which is close, so L-BFGS needs few iterations.
    decays = sorted(config.weight_decays, reverse=True)
    with torch.random.fork_rng(devices=[]), _threads(1):
        for index, decay in enumerate(decays, start=1):
            if cancelled is not None and cancelled():
                raise RunCancelled(f"head fitting cancelled at weight decay {decay}")
            torch.manual_seed(config.seed)
            head = build_head(
                config.kind, data.mean, data.scale, data.classes, config.hidden
            )
            if previous is not None and config.kind == "linear":
                head.load_state_dict(previous.state_dict())
            train_loss = _fit(head, data, config, decay)
            previous = head
            valid_loss, metric = data.evaluate(head)
            history.append(
                {
                    "phase": index,
                    "weight_decay": decay,
                    "train_loss": train_loss,
                    "valid_loss": valid_loss,
                    "valid_metric": metric,
                }
            )
            if best is None or valid_loss < best[0]:
                best = (valid_loss, head, decay)
    assert best is not None  # weight_decays is never empty
    logger.info("head %s: chose weight decay %g", config.kind, best[2])
    return best[1].eval(), HeadFit(weight_decay=best[2], history=history)


@dataclass(frozen=True)
class _Data:
    train_x: Tensor
    train_y: Tensor
    valid_x: Tensor
    valid_y: Tensor
    multi_label: bool
    classes: int
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def make(
        cls,
        train_x: np.ndarray,
        train_y: np.ndarray,
        valid_x: np.ndarray,
        valid_y: np.ndarray,
        multi_label: bool,
    ) -> _Data:
        for name, values, labels in (
            ("train", train_x, train_y),
            ("valid", valid_x, valid_y),
        ):
            if len(values) == 0 or len(values) != len(labels):
                raise ValidationError(
                    f"{name} split has {len(values)} embeddings and {len(labels)} "
                    "labels; a head needs at least one labelled image in train and "
                    "valid"
                )
        x = np.asarray(train_x, dtype=np.float32)
        mean = x.mean(axis=0)
        scale = x.std(axis=0) + 1e-3
        if multi_label:
            classes = int(np.asarray(train_y).shape[1])
        else:
            classes = int(max(np.max(train_y), np.max(valid_y))) + 1
        label_type = torch.float32 if multi_label else torch.long
        valid = np.asarray(valid_x, dtype=np.float32)
        # Standardised once here; the head's first layer does it for new images.
        return cls(
            train_x=torch.as_tensor((x - mean) / scale),
            train_y=torch.as_tensor(np.asarray(train_y), dtype=label_type),
            valid_x=torch.as_tensor((valid - mean) / scale),
            valid_y=torch.as_tensor(np.asarray(valid_y), dtype=label_type),
            multi_label=multi_label,
            classes=classes,
            mean=mean,
            scale=scale,
        )

    def loss_function(self, config: HeadConfig) -> nn.Module:
        if self.multi_label:
            positives = self.train_y.sum(0)
            negatives = len(self.train_y) - positives
            weight = (negatives / positives.clamp(min=1)).clamp(0.1, 100.0)
            if not config.class_weighting:
                return nn.BCEWithLogitsLoss()
            return nn.BCEWithLogitsLoss(pos_weight=weight)
        class_weight = None
        if config.class_weighting:
            counts = torch.bincount(self.train_y, minlength=self.classes).float()
            class_weight = len(self.train_y) / (self.classes * counts.clamp(min=1))
        return nn.CrossEntropyLoss(
            weight=class_weight, label_smoothing=config.label_smoothing
        )

    def evaluate(self, head: nn.Sequential) -> tuple[float, float]:
        head.eval()
        with torch.no_grad():
            logits = head[1:](self.valid_x)
        if self.multi_label:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, self.valid_y)
            return float(loss), _micro_f1(logits > 0, self.valid_y > 0.5)
        loss = nn.functional.cross_entropy(logits, self.valid_y)
        accuracy = (logits.argmax(1) == self.valid_y).float().mean()
        return float(loss), float(accuracy)


def _fit(head: nn.Sequential, data: _Data, config: HeadConfig, decay: float) -> float:
    criterion = data.loss_function(config)
    body = head[1:]  # the inputs are standardised already
    parameters = [p for p in body.parameters() if p.requires_grad]
    weights = [p for name, p in body.named_parameters() if name.endswith("weight")]

    def objective() -> Tensor:
        penalty = sum((w.pow(2).sum() for w in weights), torch.zeros(()))
        return criterion(body(data.train_x), data.train_y) + 0.5 * decay * penalty

    head.train()
    if config.kind == "linear":
        optimiser = torch.optim.LBFGS(
            parameters,
            lr=1.0,
            max_iter=config.max_steps,
            history_size=10,
            tolerance_change=1e-7,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            optimiser.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        optimiser.step(closure)
    else:
        adam = torch.optim.Adam(parameters, lr=1e-3)
        for _ in range(config.max_steps):
            adam.zero_grad()
            loss = objective()
            loss.backward()
            adam.step()
    head.eval()
    with torch.no_grad():
        return float(objective())


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """Runs torch on ``count`` threads: the head's matrices are too small for more
    to pay, and idle threads cost much on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _micro_f1(predicted: Tensor, truth: Tensor) -> float:
    hits = float((predicted & truth).sum())
    total = float(predicted.sum() + truth.sum())
    return 2 * hits / total if total else 1.0


def head_summary(config: HeadConfig, fit: HeadFit) -> dict[str, Any]:
    """The head's settings and chosen weight decay as JSON-safe values."""
    return {
        "kind": config.kind,
        "weight_decays": list(config.weight_decays),
        "weight_decay": fit.weight_decay,
        "class_weighting": config.class_weighting,
        "label_smoothing": config.label_smoothing,
    }


def labels_matrix(
    labels: Sequence[Sequence[str]], class_names: Sequence[str]
) -> np.ndarray:
    """A 0/1 matrix ``[N, C]`` from each image's class names."""
    position = {name: index for index, name in enumerate(class_names)}
    matrix = np.zeros((len(labels), len(class_names)), dtype=np.float32)
    for row, names in enumerate(labels):
        for name in names:
            matrix[row, position[name]] = 1.0
    return matrix

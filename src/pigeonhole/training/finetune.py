"""Fine-tuning: train a backbone's last blocks (or all of it) together with a head.

Gradients come from every file of the train split (augmented copies count as data);
the valid split only chooses the epoch to keep; the test split is never read. With
``online_augmentation`` the version's augmentation recipe is also applied afresh to
each un-augmented training image every epoch, with a generator seeded by the run's
seed, the epoch and the image, so a resumed run sees what an uninterrupted one would.

A checkpoint (resumable training state) is written atomically after every epoch and
when a run is cancelled: weights, optimizer, schedule, position in the epoch, best
weights so far, history, the torch random state and the config. Calling `fine_tune`
again with the same ``checkpoint_path`` and config continues where the last call
stopped; only ``epochs`` may differ, so that a finished run can be extended.

Example:
    >>> config = FineTuneConfig(epochs=5, image_size=160)  # doctest: +SKIP
    >>> result = fine_tune(version, "mobilenet_v2", config=config)  # doctest: +SKIP
    >>> result.history[result.best_epoch - 1]["valid_metric"]  # doctest: +SKIP
    0.94
"""

from __future__ import annotations

import copy
import logging
import math
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pigeonhole.datasets.versions import DatasetVersion, VersionItem
from pigeonhole.domain import ProjectType
from pigeonhole.errors import ImageError, ValidationError
from pigeonhole.models.backbones import build_backbone
from pigeonhole.progress import Progress, report
from pigeonhole.training import RunCancelled
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.modules import Classifier

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
BACKBONE_LR_FACTOR = 0.1
LAST_FRACTION = 0.3
WARMUP_FRACTION = 0.1
MIN_LR_FACTOR = 0.01
PREFETCH_BATCHES = 2
CACHE_BYTES = 1 << 30

Batch = tuple[torch.Tensor, torch.Tensor]


class Unfreeze(StrEnum):
    """Which backbone parameters fine-tuning trains (the head always trains)."""

    LAST = "last"
    ALL = "all"


class Balance(StrEnum):
    """How ``class_weighting`` corrects class imbalance.

    ``loss`` weights the loss by inverse class frequency; ``sampling`` draws each
    epoch's images with replacement so that every class is drawn about equally
    often, and leaves the loss unweighted.
    """

    LOSS = "loss"
    SAMPLING = "sampling"


@dataclass(frozen=True)
class FineTuneConfig:
    """How to fine-tune.

    Attributes:
        unfreeze: ``last`` trains the final feature blocks (the shortest tail of
            blocks holding at least 30% of the backbone's parameters; BatchNorm
            layers before it stay in eval mode); ``all`` trains the whole network.
        epochs: Most passes over the train split.
        batch_size: Images per step.
        learning_rate: Peak AdamW learning rate of the head; the backbone gets a
            tenth of it. A warm-up of up to one epoch precedes a cosine decay.
        weight_decay: AdamW decoupled weight decay (biases and normalisation
            parameters get none).
        label_smoothing: Cross-entropy label smoothing (single-label only).
        patience: Epochs without a better valid metric before stopping early.
        class_weighting: Correct class imbalance, in the way ``balance`` says.
        balance: ``loss`` weights classes by inverse frequency (single-label), or
            positives by negatives per positive (multi-label); ``sampling`` draws
            training images with probability inverse to the frequency of their
            class (multi-label: of their rarest label).
        image_size: Network input side in pixels; None keeps the backbone's own
            (224). A smaller one such as 160 trains about twice as fast.
        seed: Seeds the new head, the order of images and online augmentation.
        online_augmentation: Apply the version's augmentation recipe afresh to the
            un-augmented training images every epoch.

    Raises:
        ValidationError: A value out of range.
    """

    unfreeze: Unfreeze = Unfreeze.LAST
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    patience: int = 3
    class_weighting: bool = True
    balance: Balance = Balance.LOSS
    image_size: int | None = None
    seed: int = 0
    online_augmentation: bool = True

    def __post_init__(self) -> None:
        if self.unfreeze not in tuple(Unfreeze):
            raise ValidationError(
                f"unfreeze={self.unfreeze!r} is not one of: last, all"
            )
        object.__setattr__(self, "unfreeze", Unfreeze(self.unfreeze))
        if self.balance not in tuple(Balance):
            raise ValidationError(
                f"balance={self.balance!r} is not one of: loss, sampling"
            )
        object.__setattr__(self, "balance", Balance(self.balance))
        for name in ("class_weighting", "online_augmentation"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(
                    f"{name}={getattr(self, name)!r} must be true or false"
                )
        for name, low, high in (("epochs", 1, 10_000), ("batch_size", 2, 4096)):
            _check_number(name, getattr(self, name), low, high, whole=True)
        _check_number("patience", self.patience, 1, 10_000, whole=True)
        _check_number("seed", self.seed, 0, 2**63 - 1, whole=True)
        if self.image_size is not None:
            _check_number("image_size", self.image_size, 32, 1024, whole=True)
        _check_number("learning_rate", self.learning_rate, 1e-8, 1.0)
        _check_number("weight_decay", self.weight_decay, 0.0, 1.0)
        _check_number("label_smoothing", self.label_smoothing, 0.0, 0.5)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-safe values; `from_dict` reads it back."""
        return asdict(self) | {
            "unfreeze": self.unfreeze.value,
            "balance": self.balance.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FineTuneConfig:
        """Reads a config written by `to_dict`; missing keys take defaults.

        Raises:
            ValidationError: Unknown keys or values out of range.
        """
        accepted = [item.name for item in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in accepted)
        if unknown:
            raise ValidationError(
                f"unknown fine-tune setting(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(accepted)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class FineTuneResult:
    """What `fine_tune` returns.

    Attributes:
        classifier: The network with the best epoch's weights, in eval mode.
        history: One row per epoch: ``epoch``, ``train_loss``, ``valid_loss``,
            ``valid_metric`` (accuracy, or micro-F1 at 0.5 for multi-label) and
            ``images_per_second`` (training throughput).
        best_epoch: The epoch whose weights ``classifier`` holds.
        resumed: Whether training continued from a checkpoint.
    """

    classifier: Classifier
    history: list[dict[str, float]]
    best_epoch: int
    resumed: bool


def fine_tune(
    version: DatasetVersion,
    backbone_name: str,
    *,
    config: FineTuneConfig | None = None,
    initial_head: nn.Module | None = None,
    checkpoint_path: Path | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FineTuneResult:
    """Fine-tunes a pretrained backbone and a head on a dataset version.

    Args:
        version: The dataset version; its train and valid splits are used.
        backbone_name: A registered backbone, e.g. ``"mobilenet_v2"``.
        config: Settings; `FineTuneConfig`'s defaults when omitted.
        initial_head: A head to start from, mapping embeddings to logits (for
            example one fitted on cached embeddings); it is copied, not changed.
            A new linear head otherwise.
        checkpoint_path: Where to keep resumable state; a checkpoint already there
            is resumed.
        progress: Called with ``("fine-tune", epoch, epochs)`` after each epoch and
            ``("fine-tune-batch", done, total)`` after each training batch.
        cancelled: Asked between batches; True saves a checkpoint and stops.
        on_epoch: Called with each new row of the history (see `FineTuneResult`)
            as soon as its epoch is validated, so a run can record it live.

    Returns:
        The best classifier, the history, the best epoch and whether it resumed.

    Raises:
        ValidationError: An empty train or valid split, or a checkpoint written
            for another config, backbone or version.
        RunCancelled: ``cancelled()`` returned True.
        WeightsError: The backbone's weights cannot be fetched.

    Example:
        >>> result = fine_tune(version, "mobilenet_v2")  # doctest: +SKIP
        >>> logits, embedding = result.classifier(pixels)  # doctest: +SKIP
    """
    config = config or FineTuneConfig()
    data = _Data.read(version)
    cores = version.project.workspace.settings.worker_count()
    with torch.random.fork_rng(devices=[]), _torch_threads(cores):
        torch.manual_seed(config.seed)
        model = _build_model(backbone_name, data, config, initial_head)
        trainer = _Trainer(backbone_name, version, data, model, config, checkpoint_path)
        resumed = trainer.resume()
        trainer.run(progress, cancelled, on_epoch)
    model.load_state_dict(trainer.state.best_weights or model.state_dict())
    return FineTuneResult(
        classifier=model.eval(),
        history=list(trainer.state.history),
        best_epoch=trainer.state.best_epoch,
        resumed=resumed,
    )


@dataclass(frozen=True)
class _Data:
    """The items and targets of the train and valid splits, and the loss."""

    version: DatasetVersion
    multi_label: bool
    splits: dict[str, tuple[list[VersionItem], torch.Tensor]]

    @classmethod
    def read(cls, version: DatasetVersion) -> _Data:
        multi_label = ProjectType.parse(version.recipe["project_type"]).is_multi_label
        splits = {}
        for split in ("train", "valid"):
            items = version.items(split)
            if not items:
                raise ValidationError(
                    f"version {version.id} has no {split} images; fine-tuning needs "
                    "both train and valid, so re-split the project and create a "
                    "new version"
                )
            splits[split] = (items, _targets(items, version.class_names, multi_label))
        return cls(version, multi_label, splits)

    @property
    def class_names(self) -> list[str]:
        return self.version.class_names

    def criterion(self, config: FineTuneConfig) -> nn.Module:
        """Cross-entropy, or BCE with logits; weighted when ``config`` says so."""
        targets = self.splits["train"][1]
        weighted = config.class_weighting and config.balance is Balance.LOSS
        if self.multi_label:
            positives = targets.sum(0)
            ratio = (len(targets) - positives) / positives.clamp(min=1)
            pos_weight = torch.where(positives > 0, ratio, 1.0)
            return nn.BCEWithLogitsLoss(pos_weight=pos_weight if weighted else None)
        counts = self.class_counts()
        present = int((counts > 0).sum())
        weight = torch.where(counts > 0, len(targets) / (present * counts), 1.0)
        return nn.CrossEntropyLoss(
            weight=weight if weighted else None,
            label_smoothing=config.label_smoothing,
        )

    def class_counts(self) -> torch.Tensor:
        """Training images per class, float ``[C]``."""
        targets = self.splits["train"][1]
        if self.multi_label:
            return targets.sum(0)
        return torch.bincount(targets, minlength=len(self.class_names)).float()

    def sampling_weights(self) -> torch.Tensor:
        """Per training image, the inverse frequency of its (rarest) class.

        Unlabelled images of a multi-label project get the weight of the rarest
        class, so that they are not drawn less often than any class.
        """
        inverse = 1.0 / self.class_counts().clamp(min=1)
        targets = self.splits["train"][1]
        if not self.multi_label:
            return inverse[targets]
        rarest = (targets * inverse).amax(1)
        return torch.where(rarest > 0, rarest, inverse.max())


@dataclass
class _State:
    """Where a run stands; all of it goes into the checkpoint."""

    epoch: int = 0
    batch: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: list[float] = field(default_factory=lambda: [-math.inf, -math.inf])
    best_weights: dict[str, torch.Tensor] | None = None
    stale: int = 0
    stopped: bool = False


class _Trainer:
    """One fine-tuning run: the loop, validation and checkpoints."""

    pool: ThreadPoolExecutor

    def __init__(
        self,
        backbone_name: str,
        version: DatasetVersion,
        data: _Data,
        model: Classifier,
        config: FineTuneConfig,
        checkpoint_path: Path | None,
    ) -> None:
        self.backbone_name = backbone_name
        self.version, self.data, self.model, self.config = version, data, model, config
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.augmentation = version.augmentation
        self.criterion = data.criterion(config)
        self.batches = _batch_count(len(data.splits["train"][0]), config.batch_size)
        self.optimizer = _optimizer(model, config)
        self.scheduler = _scheduler(self.optimizer, self.batches, config.epochs)
        self.state = _State()
        self.cache: dict[tuple[str, int], np.ndarray] = {}
        self.cached_bytes = 0

    def resume(self) -> bool:
        """Loads the checkpoint, if there is one; says whether it did."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        saved = torch.load(path, map_location="cpu", weights_only=True)
        _check_checkpoint(saved, path, self.config, self.backbone_name, self.data)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = _State(**saved["state"])
        torch.set_rng_state(saved["torch_rng"])
        logger.info(
            "resuming fine-tuning from %s after epoch %d, batch %d",
            path,
            self.state.epoch,
            self.state.batch,
        )
        return True

    def run(
        self,
        progress: Progress | None,
        cancelled: Callable[[], bool] | None,
        on_epoch: Callable[[dict[str, float]], None] | None,
    ) -> None:
        """Trains until the last epoch or an early stop."""
        with ThreadPoolExecutor(1, thread_name_prefix="fine-tune") as self.pool:
            while not self.state.stopped and self.state.epoch < self.config.epochs:
                epoch = self.state.epoch + 1
                self._train_epoch(epoch, progress, cancelled)
                self._finish_epoch(epoch, *self._evaluate())
                if on_epoch is not None:
                    on_epoch(dict(self.state.history[-1]))
                report(progress, "fine-tune", epoch, self.config.epochs)

    def _train_epoch(
        self,
        epoch: int,
        progress: Progress | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:
        _set_train_mode(self.model)
        order = self._order(epoch)
        batches = _chunks(order.tolist(), self.config.batch_size)[: self.batches]
        loaded = self._prefetched("train", batches[self.state.batch :], epoch)
        started = time.perf_counter()
        for pixels, targets in loaded:
            if len(targets):
                self.state.loss_sum += self._step(pixels, targets) * len(targets)
                self.state.seen += len(targets)
            self.state.batch += 1
            report(progress, "fine-tune-batch", self.state.batch, self.batches)
            if cancelled is not None and cancelled():
                self.state.seconds += time.perf_counter() - started
                self._cancel(epoch)
        self.state.seconds += time.perf_counter() - started

    def _order(self, epoch: int) -> torch.Tensor:
        """The training images of an epoch, drawn from seed and epoch alone."""
        shuffler = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        size = len(self.data.splits["train"][0])
        if self.config.class_weighting and self.config.balance is Balance.SAMPLING:
            weights = self.data.sampling_weights()
            return torch.multinomial(
                weights, size, replacement=True, generator=shuffler
            )
        return torch.randperm(size, generator=shuffler)

    def _step(self, pixels: torch.Tensor, targets: torch.Tensor) -> float:
        logits, _ = self.model(pixels)
        loss = self.criterion(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def _cancel(self, epoch: int) -> None:
        where = f"epoch {epoch}, batch {self.state.batch} of {self.batches}"
        if self.checkpoint_path is None:
            raise RunCancelled(f"fine-tuning cancelled at {where}; no checkpoint kept")
        self._save()
        raise RunCancelled(
            f"fine-tuning cancelled at {where}; call fine_tune again with "
            f"checkpoint_path={str(self.checkpoint_path)!r} to resume"
        )

    @torch.inference_mode()
    def _evaluate(self) -> tuple[float, float]:
        self.model.eval()
        size = len(self.data.splits["valid"][0])
        batches = _chunks(list(range(size)), self.config.batch_size)
        loss_sum, outputs, targets = 0.0, [], []
        for pixels, target in self._prefetched("valid", batches, epoch=0):
            logits, _ = self.model(pixels)
            loss_sum += float(self.criterion(logits, target)) * len(target)
            outputs.append(logits)
            targets.append(target)
        logits, target = torch.cat(outputs), torch.cat(targets)
        score = _micro_f1 if self.data.multi_label else _accuracy
        return loss_sum / max(len(target), 1), score(logits, target)

    def _finish_epoch(self, epoch: int, valid_loss: float, metric: float) -> None:
        state = self.state
        state.history.append(
            {
                "epoch": epoch,
                "train_loss": state.loss_sum / max(state.seen, 1),
                "valid_loss": valid_loss,
                "valid_metric": metric,
                "images_per_second": state.seen / max(state.seconds, 1e-9),
            }
        )
        logger.info("fine-tune %s", state.history[-1])
        if [metric, -valid_loss] > state.best_score:
            state.best_score, state.best_epoch, state.stale = (
                [metric, -valid_loss],
                epoch,
                0,
            )
            state.best_weights = copy.deepcopy(self.model.state_dict())
        else:
            state.stale += 1
            state.stopped = state.stale >= self.config.patience
        if state.stopped:
            logger.info(
                "stopping early after epoch %d; best was %d", epoch, state.best_epoch
            )
        state.epoch, state.batch, state.loss_sum, state.seen, state.seconds = (
            epoch,
            0,
            0.0,
            0,
            0.0,
        )
        self._save()

    def _save(self) -> None:
        if self.checkpoint_path is None:
            return
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "backbone": self.backbone_name,
            "manifest_hash": self.version.manifest_hash,
            "class_names": self.data.class_names,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "state": asdict(self.state),
            "torch_rng": torch.get_rng_state(),
        }
        _atomic_save(checkpoint, self.checkpoint_path)

    def _prefetched(
        self, split: str, batches: list[list[int]], epoch: int
    ) -> Iterator[Batch]:
        """Batches decoded on the loader thread while the model computes."""
        pending: deque[Future[Batch]] = deque()
        for indices in batches:
            pending.append(self.pool.submit(self._load, split, indices, epoch))
            if len(pending) > PREFETCH_BATCHES:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _load(self, split: str, indices: list[int], epoch: int) -> Batch:
        items, targets = self.data.splits[split]
        augment = split == "train" and self.config.online_augmentation
        pixels, kept = [], []
        for index in indices:
            fresh = augment and items[index].copy == 0
            prepared = self._prepare(split, index, epoch if fresh else None)
            if prepared is not None:
                pixels.append(prepared)
                kept.append(index)
        size = (0, *self.model.model_input.size[::-1], 3)
        stacked = np.stack(pixels) if pixels else np.zeros(size, np.uint8)
        return torch.from_numpy(stacked), targets[kept]

    def _prepare(self, split: str, index: int, epoch: int | None) -> np.ndarray | None:
        """One item's model input; augmented afresh for ``epoch`` unless None.

        Un-augmented pixels are kept in memory (up to `CACHE_BYTES`), so the valid
        split and fixed training copies are decoded once per run, not per epoch.
        """
        item = self.data.splits[split][0][index]
        fresh = epoch is not None and not self.augmentation.is_identity
        if not fresh and (split, index) in self.cache:
            return self.cache[split, index]
        try:
            image = self.version.load(item)
        except ImageError as error:
            logger.warning("fine-tuning skips %s: %s", item.name, error)
            return None
        if fresh:
            image = self.augmentation.augment(
                image, _item_rng(self.config.seed, epoch or 0, item)
            )
        prepared = self.model.model_input.prepare(image)
        if not fresh and self.cached_bytes + prepared.nbytes <= CACHE_BYTES:
            self.cache[split, index] = prepared
            self.cached_bytes += prepared.nbytes
        return prepared


def _build_model(
    name: str, data: _Data, config: FineTuneConfig, initial_head: nn.Module | None
) -> Classifier:
    backbone, dimension = build_backbone(name)
    side = config.image_size
    model_input = ModelInput.for_backbone(name, (side, side) if side else None)
    classes = len(data.class_names)
    if initial_head is None:
        head: nn.Module = nn.Linear(dimension, classes)
    else:
        head = copy.deepcopy(initial_head).float()
        with torch.no_grad():
            outputs = head.eval()(torch.zeros(2, dimension)).shape
        if tuple(outputs) != (2, classes):
            raise ValidationError(
                f"initial_head maps a {dimension}-long embedding to "
                f"{tuple(outputs)[1:]} outputs; this version has {classes} classes"
            )
    _unfreeze(backbone, config.unfreeze)
    model = Classifier(backbone, head, model_input)
    return model.to(memory_format=torch.channels_last)


def _unfreeze(backbone: nn.Module, unfreeze: Unfreeze) -> None:
    """Marks which backbone parameters train: all, or the last blocks."""
    blocks: dict[str, list[nn.Parameter]] = {}
    for name, parameter in backbone.named_parameters():
        blocks.setdefault(_block_of(name), []).append(parameter)
        parameter.requires_grad_(unfreeze is Unfreeze.ALL)
    if unfreeze is Unfreeze.ALL:
        return
    total = sum(parameter.numel() for parameter in backbone.parameters())
    trained = 0
    for parameters in reversed(blocks.values()):
        if trained >= LAST_FRACTION * total:
            break
        for parameter in parameters:
            parameter.requires_grad_(True)
            trained += parameter.numel()


def _block_of(name: str) -> str:
    """``features.17.conv.0.weight`` -> ``features.17``; ``bn.weight`` -> ``bn``."""
    parts = name.split(".")
    for position, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: position + 1])
    return ".".join(parts[:-1]) or name


def _set_train_mode(model: nn.Module) -> None:
    """Train mode, except BatchNorm layers of frozen blocks keep their statistics."""
    model.train()
    for module in model.modules():
        frozen = not any(p.requires_grad for p in module.parameters(recurse=False))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and frozen:
            module.eval()


def _optimizer(model: Classifier, config: FineTuneConfig) -> torch.optim.AdamW:
    """AdamW over head and backbone, no decay on biases and normalisation."""
    groups = []
    for module, factor in ((model.head, 1.0), (model.backbone, BACKBONE_LR_FACTOR)):
        trained = [p for p in module.parameters() if p.requires_grad]
        for decay in (True, False):
            chosen = [p for p in trained if (p.ndim > 1) == decay]
            if chosen:
                groups.append(
                    {
                        "params": chosen,
                        "lr": config.learning_rate * factor,
                        "weight_decay": config.weight_decay if decay else 0.0,
                    }
                )
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def _scheduler(
    optimizer: torch.optim.Optimizer, batches: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over up to one epoch, then cosine decay, stepped per batch.

    The factor is computed from ``epochs`` of this call, not stored: a resumed run
    with more epochs stretches the remaining decay.
    """
    total = batches * epochs
    warmup = max(1, min(batches, round(WARMUP_FRACTION * total)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = min(1.0, (step - warmup) / max(1, total - warmup))
        return MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (
            1 + math.cos(math.pi * done)
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _targets(
    items: list[VersionItem], class_names: list[str], multi_label: bool
) -> torch.Tensor:
    """Class ids (single-label) or multi-hot float rows (multi-label)."""
    position = {name: index for index, name in enumerate(class_names)}
    if not multi_label:
        return torch.tensor([position[item.labels[0]] for item in items])
    rows = torch.zeros(len(items), len(class_names))
    for row, item in enumerate(items):
        rows[row, [position[label] for label in item.labels]] = 1.0
    return rows


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return float((logits.argmax(1) == targets).float().mean()) if len(targets) else 0.0


def _micro_f1(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Micro-averaged F1 of the labels predicted at probability 0.5."""
    predicted = logits > 0
    true_positives = float((predicted & (targets > 0.5)).sum())
    wrong = float((predicted != (targets > 0.5)).sum())
    return 2 * true_positives / max(2 * true_positives + wrong, 1e-9)


def _batch_count(size: int, batch_size: int) -> int:
    """Batches per epoch; a last batch of one image is left out (BatchNorm)."""
    full, rest = divmod(size, batch_size)
    return full + int(rest > 1 or full == 0)


def _chunks(indices: list[int], size: int) -> list[list[int]]:
    return [indices[start : start + size] for start in range(0, len(indices), size)]


def _item_rng(seed: int, epoch: int, item: VersionItem) -> np.random.Generator:
    """Online augmentation draws, determined by seed, epoch and image alone."""
    entropy = [seed, epoch, int(item.sha256[:16], 16)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def _check_checkpoint(
    saved: dict[str, Any],
    path: Path,
    config: FineTuneConfig,
    backbone_name: str,
    data: _Data,
) -> None:
    """Refuses a checkpoint written for another run."""
    expected = {
        "format": CHECKPOINT_FORMAT,
        "backbone": backbone_name,
        "manifest_hash": data.version.manifest_hash,
        "class_names": data.class_names,
    }
    for key, value in expected.items():
        if saved.get(key) != value:
            raise ValidationError(
                f"checkpoint {path} has {key}={saved.get(key)!r}, this run "
                f"{key}={value!r}; delete the file or choose another checkpoint_path"
            )
    wanted, found = config.to_dict(), saved.get("config", {})
    differ = [
        key for key in wanted if key != "epochs" and found.get(key) != wanted[key]
    ]
    if differ:
        was = ", ".join(f"{key}={found.get(key)!r}" for key in differ)
        now = ", ".join(f"{key}={wanted[key]!r}" for key in differ)
        raise ValidationError(
            f"checkpoint {path} was written with {was}, this call asks for {now}; "
            "resume with the same config (only epochs may change) or choose "
            "another checkpoint_path"
        )


def _atomic_save(checkpoint: dict[str, Any], path: Path) -> None:
    """Writes to a temporary file beside ``path``, then renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Sets torch's intra-op threads for the block, then restores them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_number(
    name: str, value: object, low: float, high: float, *, whole: bool = False
) -> None:
    kind = "a whole number" if whole else "a number"
    allowed = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ValidationError(f"{name}={value!r} must be {kind}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValidationError(
            f"{name}={value!r} must be {kind} from {low:g} to {high:g}"
        )

"""Tests for fine-tuning: real MobileNetV2 weights on small drawn pictures.

One uninterrupted three-epoch run is shared by the module; it copies its checkpoint
after each epoch, so that resume tests can start from the state a killed run would
have left and compare with what the uninterrupted run went on to do.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from drawn import PER_CLASS, drawn_project, small_picture, two_colour_picture
from torch import nn

from modelgen import CLASS_NAMES
from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.datasets.versions import DatasetVersion
from pigeonhole.errors import ValidationError
from pigeonhole.training import RunCancelled
from pigeonhole.training.finetune import (
    Balance,
    FineTuneConfig,
    FineTuneResult,
    _Data,
    fine_tune,
)
from pigeonhole.workspace import Workspace

# Small inputs and batches keep a run to a few seconds on two cores; 30 training
# pictures in batches of 10 make three steps an epoch.
CONFIG = FineTuneConfig(epochs=3, batch_size=10, image_size=64, seed=3)


@dataclass
class Uninterrupted:
    version: DatasetVersion
    result: FineTuneResult
    rows: list[dict[str, float]]
    phases: list[tuple[str, int, int | None]]
    after_epoch: dict[int, Path]


@pytest.fixture(scope="module")
def version(shared_workspace: Workspace) -> DatasetVersion:
    project = drawn_project(shared_workspace, "finetune-shapes")
    augmentation = Augmentation(flip_horizontal=True, brightness=0.1)
    return project.create_version(augmentation=augmentation)


@pytest.fixture(scope="module")
def uninterrupted(
    version: DatasetVersion, tmp_path_factory: pytest.TempPathFactory
) -> Uninterrupted:
    folder = tmp_path_factory.mktemp("uninterrupted")
    checkpoint = folder / "checkpoint.pt"
    rows: list[dict[str, float]] = []
    phases: list[tuple[str, int, int | None]] = []
    after_epoch: dict[int, Path] = {}

    def keep(row: dict[str, float]) -> None:
        rows.append(row)
        after_epoch[int(row["epoch"])] = folder / f"after-{int(row['epoch'])}.pt"
        shutil.copyfile(checkpoint, after_epoch[int(row["epoch"])])

    result = fine_tune(
        version,
        "mobilenet_v2",
        config=CONFIG,
        checkpoint_path=checkpoint,
        progress=lambda *phase: phases.append(phase),
        on_epoch=keep,
    )
    return Uninterrupted(version, result, rows, phases, after_epoch)


def same_weights(first: nn.Module, second: nn.Module) -> bool:
    mine, theirs = first.state_dict(), second.state_dict()
    return mine.keys() == theirs.keys() and all(
        torch.allclose(mine[key].float(), theirs[key].float(), atol=1e-5)
        for key in mine
    )


def imbalanced_version(workspace: Workspace, name: str, **kind: Any) -> DatasetVersion:
    """Train split: 6 red, 3 green, 1 blue; valid: one of each."""
    project = workspace.create_project(name, classes=CLASS_NAMES, **kind)
    index = 0
    for class_id, count in enumerate((6, 3, 1)):
        for split, times in (("train", count), ("valid", 1)):
            for _ in range(times):
                index += 1
                project.add_image(
                    small_picture(index, class_id),
                    labels=[CLASS_NAMES[class_id]],
                    split=split,
                )
    return project.create_version()


# Learning


@pytest.mark.slow
def test_fine_tuning_learns_above_chance(uninterrupted: Uninterrupted) -> None:
    result = uninterrupted.result
    history = result.history

    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = history[result.best_epoch - 1]["valid_metric"]
    assert best == max(row["valid_metric"] for row in history)
    assert best > 0.6  # three classes: chance is a third
    assert not result.resumed
    assert not result.classifier.training


@pytest.mark.slow
def test_best_classifier_reproduces_its_valid_accuracy(
    uninterrupted: Uninterrupted,
) -> None:
    version, result = uninterrupted.version, uninterrupted.result
    items = version.items("valid")
    model_input = result.classifier.model_input
    pixels = torch.from_numpy(model_input.batch(version.load(item) for item in items))
    with torch.inference_mode():
        logits, embedding = result.classifier(pixels)
    truth = torch.tensor([CLASS_NAMES.index(item.labels[0]) for item in items])

    accuracy = float((logits.argmax(1) == truth).float().mean())

    assert logits.shape == (len(items), len(CLASS_NAMES))
    assert embedding.shape == (len(items), 1280)
    best = result.history[result.best_epoch - 1]["valid_metric"]
    assert accuracy == pytest.approx(best, abs=1e-6)


@pytest.mark.slow
def test_progress_reports_every_epoch_and_batch(uninterrupted: Uninterrupted) -> None:
    epochs = [phase for phase in uninterrupted.phases if phase[0] == "fine-tune"]
    batches = [phase for phase in uninterrupted.phases if phase[0] != "fine-tune"]

    assert epochs == [("fine-tune", 1, 3), ("fine-tune", 2, 3), ("fine-tune", 3, 3)]
    assert batches[:3] == [("fine-tune-batch", done, 3) for done in (1, 2, 3)]
    assert len(batches) == 9
    assert uninterrupted.rows == uninterrupted.result.history
    assert {"train_loss", "valid_loss", "valid_metric"} <= set(uninterrupted.rows[0])


# Checkpoints


@pytest.mark.slow
def test_resume_after_a_kill_continues_at_the_next_epoch(
    uninterrupted: Uninterrupted, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    shutil.copyfile(uninterrupted.after_epoch[2], checkpoint)
    rows: list[dict[str, float]] = []

    result = fine_tune(
        uninterrupted.version,
        "mobilenet_v2",
        config=CONFIG,
        checkpoint_path=checkpoint,
        on_epoch=rows.append,
    )

    assert result.resumed
    assert [row["epoch"] for row in rows] == [3]
    expected = uninterrupted.result.history
    assert result.history[:2] == expected[:2]
    for mine, theirs in zip(result.history[2:], expected[2:], strict=True):
        for key in ("train_loss", "valid_loss", "valid_metric"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    assert result.best_epoch == uninterrupted.result.best_epoch
    assert same_weights(result.classifier, uninterrupted.result.classifier)


@pytest.mark.slow
def test_cancelled_run_raises_and_resumes_mid_epoch(
    uninterrupted: Uninterrupted, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    shutil.copyfile(uninterrupted.after_epoch[2], checkpoint)
    asked = []

    def cancel_after_first_batch() -> bool:
        asked.append(True)
        return True

    with pytest.raises(RunCancelled, match=r"cancelled at epoch 3, batch 1 of 3"):
        fine_tune(
            uninterrupted.version,
            "mobilenet_v2",
            config=CONFIG,
            checkpoint_path=checkpoint,
            cancelled=cancel_after_first_batch,
        )
    assert asked == [True]

    result = fine_tune(
        uninterrupted.version, "mobilenet_v2", config=CONFIG, checkpoint_path=checkpoint
    )

    assert result.resumed
    last, expected = result.history[-1], uninterrupted.result.history[-1]
    assert last["epoch"] == 3
    assert last["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-4)
    assert last["valid_metric"] == pytest.approx(expected["valid_metric"], abs=1e-6)
    assert same_weights(result.classifier, uninterrupted.result.classifier)


def test_cancelling_without_a_checkpoint_says_nothing_was_kept(
    uninterrupted: Uninterrupted,
) -> None:
    with pytest.raises(RunCancelled, match="no checkpoint kept"):
        fine_tune(
            uninterrupted.version,
            "mobilenet_v2",
            config=FineTuneConfig(epochs=1, batch_size=10, image_size=64),
            cancelled=lambda: True,
        )


@pytest.mark.slow
def test_checkpoint_of_another_config_is_refused(
    uninterrupted: Uninterrupted, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    shutil.copyfile(uninterrupted.after_epoch[1], checkpoint)
    other = FineTuneConfig(epochs=3, batch_size=10, image_size=64, seed=4)

    with pytest.raises(ValidationError, match=r"written with seed=3.*seed=4"):
        fine_tune(
            uninterrupted.version,
            "mobilenet_v2",
            config=other,
            checkpoint_path=checkpoint,
        )


# Class imbalance


def test_class_weighting_weights_the_loss_by_inverse_frequency(
    shared_workspace: Workspace,
) -> None:
    data = _Data.read(imbalanced_version(shared_workspace, "weighted"))

    weighted = data.criterion(FineTuneConfig())
    plain = data.criterion(FineTuneConfig(class_weighting=False))
    sampled = data.criterion(FineTuneConfig(balance="sampling"))

    assert isinstance(weighted, nn.CrossEntropyLoss)
    # 10 images over 3 classes: n / (classes * count)
    expected = torch.tensor([10 / 18, 10 / 9, 10 / 3])
    assert torch.allclose(weighted.weight, expected)
    assert plain.weight is None
    assert sampled.weight is None
    assert weighted.label_smoothing == pytest.approx(0.1)


def test_balanced_sampling_draws_rare_classes_as_often(
    shared_workspace: Workspace,
) -> None:
    data = _Data.read(imbalanced_version(shared_workspace, "sampled"))
    targets = data.splits["train"][1]

    weights = data.sampling_weights()
    drawn = torch.multinomial(
        weights, 30_000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    shares = torch.bincount(targets[drawn], minlength=3).float() / len(drawn)

    assert torch.allclose(weights * data.class_counts()[targets], torch.ones(10))
    assert torch.allclose(shares, torch.full((3,), 1 / 3), atol=0.02)


# Multi-label


@pytest.fixture(scope="module")
def multi_label_version(shared_workspace: Workspace) -> DatasetVersion:
    project = shared_workspace.create_project(
        "finetune-mixed", type="multi-label", classes=CLASS_NAMES
    )
    seed = 0
    for split, count in PER_CLASS.items():
        for first in range(3):
            for second in range(3):
                for _ in range(max(1, count // 3)):
                    seed += 1
                    project.add_image(
                        two_colour_picture(seed, first, second),
                        labels=sorted({CLASS_NAMES[first], CLASS_NAMES[second]}),
                        split=split,
                    )
    return project.create_version()


def test_multi_label_uses_bce_with_positive_weights(
    multi_label_version: DatasetVersion,
) -> None:
    data = _Data.read(multi_label_version)

    criterion = data.criterion(FineTuneConfig())

    assert data.multi_label
    assert isinstance(criterion, nn.BCEWithLogitsLoss)
    targets = data.splits["train"][1]
    positives = targets.sum(0)
    expected = (len(targets) - positives) / positives
    assert torch.allclose(criterion.pos_weight, expected)


@pytest.mark.slow
@pytest.mark.parametrize("balance", list(Balance), ids=[item.value for item in Balance])
def test_multi_label_fine_tuning_runs(
    multi_label_version: DatasetVersion, balance: Balance
) -> None:
    config = FineTuneConfig(epochs=2, batch_size=9, image_size=64, balance=balance)

    result = fine_tune(multi_label_version, "mobilenet_v2", config=config)

    assert len(result.history) == 2
    assert all(0.0 <= row["valid_metric"] <= 1.0 for row in result.history)
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    with torch.inference_mode():
        logits, _ = result.classifier(torch.zeros(2, 64, 64, 3, dtype=torch.uint8))
    assert logits.shape == (2, len(CLASS_NAMES))


# Bad input


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"unfreeze": "middle"}, r"unfreeze='middle' is not one of: last, all"),
        ({"balance": "both"}, r"balance='both' is not one of: loss, sampling"),
        ({"epochs": 0}, r"epochs=0 must be a whole number from 1 to 10000"),
        ({"batch_size": 2.5}, r"batch_size=2.5 must be a whole number"),
        ({"learning_rate": 2.0}, r"learning_rate=2.0 must be a number from"),
        ({"label_smoothing": 0.9}, r"label_smoothing=0.9 must be a number from 0"),
        ({"image_size": 16}, r"image_size=16 must be a whole number from 32"),
        ({"class_weighting": "yes"}, r"class_weighting='yes' must be true or false"),
        ({"epoch": 3}, r"unknown fine-tune setting\(s\) 'epoch'; accepted: unfreeze"),
    ],
    ids=[
        "unfreeze",
        "balance",
        "epochs",
        "batch-size",
        "learning-rate",
        "smoothing",
        "image-size",
        "weighting",
        "unknown-key",
    ],
)
def test_bad_config_is_a_validation_error(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        FineTuneConfig.from_dict(settings)


def test_config_round_trips_through_a_dict() -> None:
    config = FineTuneConfig(unfreeze="all", balance="sampling", image_size=160)

    assert FineTuneConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["balance"] == "sampling"


def test_a_version_without_valid_images_is_refused(
    shared_workspace: Workspace,
) -> None:
    project = shared_workspace.create_project("no-valid", classes=CLASS_NAMES)
    for index in range(4):
        project.add_image(
            small_picture(index, index % 3),
            labels=[CLASS_NAMES[index % 3]],
            split="train",
        )
    version = project.create_version()

    with pytest.raises(ValidationError, match=r"has no valid images"):
        fine_tune(version, "mobilenet_v2", config=CONFIG)

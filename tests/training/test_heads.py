"""Tests for the fast mode's head: sweep, class weighting, multi-label, MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pigeonhole.errors import ValidationError
from pigeonhole.training import RunCancelled
from pigeonhole.training.heads import HeadConfig, fit_head, labels_matrix


def blobs(
    counts: list[int], seed: int, spread: float = 1.0, dimension: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, ``counts[c]`` points each."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 2.0, (len(counts), dimension))
    points = [
        rng.normal(centres[label], spread, (count, dimension))
        for label, count in enumerate(counts)
    ]
    labels = [np.full(count, label) for label, count in enumerate(counts)]
    return np.concatenate(points).astype(np.float32), np.concatenate(labels)


def predict(head: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(head(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("kind", ["linear", "mlp"], ids=["linear", "mlp"])
def test_head_learns_separable_classes(kind: str) -> None:
    train_x, train_y = blobs([40, 40, 40], seed=1)
    valid_x, valid_y = blobs([15, 15, 15], seed=2)
    test_x, test_y = blobs([20, 20, 20], seed=3)

    head, fit = fit_head(
        train_x,
        train_y,
        valid_x,
        valid_y,
        multi_label=False,
        config=HeadConfig(kind=kind),
    )

    accuracy = np.mean(predict(head, test_x).argmax(1) == test_y)
    assert accuracy > 0.9
    assert [row["phase"] for row in fit.history] == [1, 2, 3, 4, 5]
    assert fit.weight_decay in HeadConfig().weight_decays


def test_sweep_keeps_the_lowest_valid_loss() -> None:
    train_x, train_y = blobs([10, 10], seed=4, spread=3.0, dimension=64)
    valid_x, valid_y = blobs([30, 30], seed=5, spread=3.0, dimension=64)

    _head, fit = fit_head(
        train_x,
        train_y,
        valid_x,
        valid_y,
        multi_label=False,
        config=HeadConfig(weight_decays=(0.0, 1.0)),
    )

    losses = {row["weight_decay"]: row["valid_loss"] for row in fit.history}
    assert fit.weight_decay == min(losses, key=losses.__getitem__)


def test_class_weighting_raises_recall_of_a_rare_class() -> None:
    train_x, train_y = blobs([200, 8], seed=6, spread=2.5)
    valid_x, valid_y = blobs([50, 50], seed=7, spread=2.5)
    test_x, test_y = blobs([300, 300], seed=8, spread=2.5)
    recalls = []
    for weighting in (False, True):
        head, _fit = fit_head(
            train_x,
            train_y,
            valid_x,
            valid_y,
            multi_label=False,
            config=HeadConfig(class_weighting=weighting, weight_decays=(0.01,)),
        )
        predicted = predict(head, test_x).argmax(1)
        recalls.append(np.mean(predicted[test_y == 1] == 1))

    assert recalls[1] > recalls[0]


def test_multi_label_head_predicts_each_label() -> None:
    x, single = blobs([60, 60, 60], seed=9)
    # Label 2 also carries label 0: two labels on a third of the images.
    names = ["a", "b", "c"]
    labels = [[names[i]] + (["a"] if i == 2 else []) for i in single]
    y = labels_matrix(labels, names)

    head, fit = fit_head(x[::2], y[::2], x[1::2], y[1::2], multi_label=True)

    predicted = predict(head, x[1::2]) > 0
    assert predicted.shape == (90, 3)
    assert np.mean(predicted == (y[1::2] > 0.5)) > 0.9
    assert 0.9 < fit.history[0]["valid_metric"] <= 1.0


def test_cancel_stops_the_sweep() -> None:
    x, y = blobs([10, 10], seed=10)

    with pytest.raises(RunCancelled, match="weight decay"):
        fit_head(x, y, x, y, multi_label=False, cancelled=lambda: True)


def test_empty_valid_split_is_refused() -> None:
    x, y = blobs([10, 10], seed=11)

    with pytest.raises(ValidationError, match="valid split has 0 embeddings"):
        fit_head(x, y, x[:0], y[:0], multi_label=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "forest"}, "head kind='forest'"),
        ({"weight_decays": ()}, "weight_decays"),
        ({"label_smoothing": 0.9}, "label_smoothing=0.9"),
    ],
    ids=["kind", "no-decays", "smoothing"],
)
def test_bad_head_config_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HeadConfig(**changes)  # type: ignore[arg-type]

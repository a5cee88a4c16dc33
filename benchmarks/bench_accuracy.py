"""Test-split accuracy and wall time of training, against a plain baseline.

For each real photo set in ``ctx.data`` a workspace is built (import, splits, a
dataset version; not timed), then:

- ours: a dataset version with the recommended recipe (centre crop to 256 x 256),
  then `pigeonhole.training.runs.train` in fast mode, from a cold embedding cache
  to a packaged model (embeddings, head sweep, calibration, evaluation, ONNX export
  and parity check); then fine-tune mode (5 epochs at 160 px) on the
  single-label sets (on every set with ``PIGEONHOLE_BENCH_FINE_TUNE=all``, which
  adds about 90 s for fashion-multilabel; in a ``--quick`` run only with
  ``--fine-tune`` or ``PIGEONHOLE_BENCH_FINE_TUNE=1``); then the
  fast model's out-of-distribution score against max-softmax, by AUROC, with up
  to 200 photos of another set as the unknowns
  (`pigeonhole.evaluation.unknowns`).
- baseline, in the same run, on the same images of each split (the original
  files, not the version's): torchvision MobileNetV2
  with ImageNet weights and its classifier removed, eager PyTorch with the
  weights' standard transforms (resize 256, centre crop 224), then scikit-learn
  ``LogisticRegression()`` with default settings fitted on the train split
  (one-vs-rest for multi-label, label at probability 0.5).

Splits: hymenoptera and flowers5 use their ``val`` folder as the test split and a
seeded, per-class 80/20 split of ``train`` as train/valid; weather and
fashion-multilabel are split 70/20/10 by Pigeonhole (near-duplicates kept
together). The baseline never sees the valid split, which ours uses to choose
the head's weight decay, the temperature and the thresholds.

Run standalone with ``python -m benchmarks.bench_accuracy [--quick] [--fine-tune]``.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Context, Figure, default_data, print_figures

logger = logging.getLogger(__name__)

#: The dataset version recipe: the recommended centre crop at the weights' resize
#: size, so the model sees the framing its ImageNet weights were evaluated with.
RECIPE_SIZE = (256, 256)
#: Most photos of another set used as unknowns.
UNKNOWN_IMAGES = 200


@dataclass(frozen=True)
class PhotoSet:
    """One real data set and how to load it into a project."""

    name: str
    multi_label: bool
    load: Callable[[Any, Path], None]
    unknowns: str
    #: Fine-tuned in a full run; a set left out costs too much of the suite's time.
    fine_tune: bool = True


def _given_test_split(project: Any, root: Path) -> None:
    project.import_path(root / "val", resplit=True)
    project.set_split([image.id for image in project.images()], "test")
    project.import_path(root / "train", resplit=True)
    rng = random.Random(0)
    for class_name in project.class_names:
        fresh = [
            image.id
            for image in project.images(label=class_name)
            if image.split is None
        ]
        rng.shuffle(fresh)
        cut = round(len(fresh) * 0.8)
        project.set_split(fresh[:cut], "train")
        project.set_split(fresh[cut:], "valid")


def _our_split(project: Any, root: Path) -> None:
    from pigeonhole.datasets.splitting import SplitRatios

    project.import_path(root, resplit=True)
    project.split(SplitRatios(0.7, 0.2, 0.1), seed=0)


SETS = (
    PhotoSet("hymenoptera", False, _given_test_split, "flowers5"),
    PhotoSet("flowers5", False, _given_test_split, "weather"),
    PhotoSet("weather", False, _our_split, "hymenoptera"),
    PhotoSet("fashion-multilabel", True, _our_split, "flowers5", fine_tune=False),
)


def build_project(workspace: Any, photo_set: PhotoSet, root: Path) -> Any:
    """Imports a set into a new project and freezes a dataset version."""
    from pigeonhole.preprocessing import Preprocessing

    project_type = "multi-label" if photo_set.multi_label else "single-label"
    project = workspace.create_project(photo_set.name, type=project_type)
    photo_set.load(project, root)
    project.create_version(Preprocessing(resize=RECIPE_SIZE, resize_mode="center-crop"))
    return project


def train_ours(
    project: Any, mode: str, fine_tune: dict[str, Any]
) -> tuple[float, float, int]:
    """Trains with Pigeonhole; returns (test metric, seconds, model number)."""
    from pigeonhole.training.runs import TrainConfig, train

    start = time.perf_counter()
    model = train(project, config=TrainConfig(mode=mode, fine_tune=fine_tune))
    seconds = time.perf_counter() - start
    metric = "micro_f1" if project.type.is_multi_label else "accuracy"
    return float(model.metrics[metric]), seconds, model.number


def unknowns_figure(
    project: Any, number: int, photo_set: PhotoSet, data: Path
) -> Figure:
    """AUROC of our out-of-distribution score against max-softmax, with up to
    `UNKNOWN_IMAGES` photos of another set as the unknowns."""
    from pigeonhole.evaluation.unknowns import evaluate_unknowns
    from pigeonhole.images import IMAGE_SUFFIXES

    others = sorted(
        path
        for path in (data / photo_set.unknowns).rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
    )
    random.Random(0).shuffle(others)
    found = evaluate_unknowns(project, number, others[:UNKNOWN_IMAGES])
    return Figure(
        f"{photo_set.name}: telling {photo_set.unknowns} photos apart, AUROC",
        found.auroc.get("ood_score", float("nan")),
        found.auroc["max_softmax"],
        "AUROC",
        True,
        note=f"{found.unknown} unknowns vs {found.known} test images; answered "
        f"'no result' for {found.unknown_rejected:.0%} of unknowns and "
        f"{found.known_rejected:.0%} of known; baseline: 1 - max softmax",
    )


def train_baseline(project: Any) -> tuple[float, float]:
    """torchvision MobileNetV2 embeddings + LogisticRegression(); (metric, seconds)."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    start = time.perf_counter()
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    network = mobilenet_v2(weights=weights)
    network.classifier = torch.nn.Identity()  # type: ignore[assignment]
    network.eval()
    transform = weights.transforms()
    from pigeonhole import images

    version = project.version()
    names = version.class_names
    blobs = project.workspace.blobs

    def original(item: Any) -> Any:
        return images.decode(blobs.get(item.source), name=item.name)

    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        items = [item for item in version.items(split) if item.copy == 0]
        chunks = []
        for begin in range(0, len(items), 32):
            chunk = items[begin : begin + 32]
            batch = [transform(original(item)) for item in chunk]
            with torch.no_grad():
                chunks.append(network(torch.stack(batch)).numpy())
        labels = np.zeros((len(items), len(names)), dtype=np.int64)
        for row, item in enumerate(items):
            for label in item.labels:
                labels[row, names.index(label)] = 1
        return np.concatenate(chunks), labels

    train_x, train_y = features("train")
    test_x, test_y = features("test")
    if project.type.is_multi_label:
        model = OneVsRestClassifier(LogisticRegression()).fit(train_x, train_y)
        metric = f1_score(test_y, model.predict(test_x), average="micro")
    else:
        classifier = LogisticRegression().fit(train_x, train_y.argmax(1))
        metric = np.mean(classifier.predict(test_x) == test_y.argmax(1))
    return float(metric), time.perf_counter() - start


def run(ctx: Context) -> list[Figure]:
    """Measures every set found under ``ctx.data``; no figures without data."""
    if ctx.data is None:
        return []
    from pigeonhole.workspace import Workspace

    asked = os.environ.get("PIGEONHOLE_BENCH_FINE_TUNE", "")
    with_fine_tune = not ctx.quick or asked in ("1", "all")
    chosen = SETS[:1] if ctx.quick else SETS
    figures: list[Figure] = []
    for photo_set in chosen:
        root = ctx.data / photo_set.name
        if not root.is_dir():
            continue
        folder = ctx.workdir / f"accuracy-{photo_set.name}"
        shutil.rmtree(folder, ignore_errors=True)
        workspace = Workspace.init(folder)
        project = build_project(workspace, photo_set, root)
        fine_tune = with_fine_tune and (photo_set.fine_tune or asked == "all")
        figures += _measure(project, photo_set, fine_tune, ctx.data)
        workspace.close()
    return figures


def _measure(
    project: Any, photo_set: PhotoSet, fine_tune: bool, data: Path
) -> list[Figure]:
    metric_name = "micro-F1" if photo_set.multi_label else "accuracy"
    counts = project.version().counts
    note = f"splits {counts.get('splits', counts)}"
    base_metric, base_seconds = train_baseline(project)
    ours_metric, ours_seconds, number = train_ours(project, "fast", {})
    _warm_metric, warm_seconds, _ = train_ours(project, "fast", {})
    unknowns = []
    if (data / photo_set.unknowns).is_dir():
        unknowns = [unknowns_figure(project, number, photo_set, data)]
    figures = [
        Figure(
            f"{photo_set.name}: fast mode test {metric_name}",
            ours_metric,
            base_metric,
            "fraction",
            True,
            target=">= baseline",
            met=ours_metric >= base_metric,
            note=note,
        ),
        Figure(
            f"{photo_set.name}: fast mode wall time, cold cache",
            ours_seconds,
            base_seconds,
            "s",
            False,
            note="ours includes calibration, evaluation, plots, ONNX export and "
            "parity; baseline is embeddings + fit + predict",
        ),
        Figure(
            f"{photo_set.name}: fast mode wall time, warm cache",
            warm_seconds,
            base_seconds,
            "s",
            False,
        ),
    ]
    if fine_tune:
        settings = {"epochs": 5, "image_size": 160}
        tuned_metric, tuned_seconds, _ = train_ours(project, "fine-tune", settings)
        figures += [
            Figure(
                f"{photo_set.name}: fine-tune test {metric_name}",
                tuned_metric,
                base_metric,
                "fraction",
                True,
                target=">= baseline",
                met=tuned_metric >= base_metric,
                note=f"fine-tune {settings}",
            ),
            Figure(
                f"{photo_set.name}: fine-tune wall time",
                tuned_seconds,
                base_seconds,
                "s",
                False,
            ),
        ]
    return figures + unknowns


def main() -> None:
    """Runs the benchmark standalone and prints each figure with its ratio."""
    import tempfile

    logging.basicConfig(level=logging.WARNING)
    if "--fine-tune" in sys.argv:
        os.environ["PIGEONHOLE_BENCH_FINE_TUNE"] = "1"
    with tempfile.TemporaryDirectory() as scratch:
        ctx = Context(
            quick="--quick" in sys.argv,
            workdir=Path(scratch),
            data=default_data(),
        )
        print_figures(run(ctx))


if __name__ == "__main__":
    main()

"""Training speed: fast mode on 1,000 images, fine-tuning throughput against peak.

- fast mode, 1,000 generated 320x240..640x480 JPEGs in five classes, split
  70/20/10 and frozen as a 224 x 224 dataset version (not timed): the wall time of
  `pigeonhole.training.runs.train` from a cold embedding cache (every image
  embedded) and again warm (every embedding cached), each to a packaged, evaluated
  model. Baseline, in the same run: torchvision MobileNetV2 embeddings in eager
  PyTorch plus scikit-learn ``LogisticRegression()`` on the same images
  (`benchmarks.bench_accuracy.train_baseline`).
- fine-tuning at 224 and 160 pixels: training images per second of
  `pigeonhole.training.finetune.fine_tune` (its own figure for the second of two
  epochs, decode and online augmentation included), against a
  plain eager loop that trains all of torchvision's MobileNetV2 in NCHW with SGD;
  and the share of the machine's peak FLOP/s that our training step reaches. The
  peak is measured in the same run with a large float32 matrix multiply on the
  same threads; the FLOPs of one training step are counted by torch's
  ``FlopCounterMode`` (forward and backward).

Run standalone with ``python -m benchmarks.bench_training [--quick]``.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_accuracy import train_baseline
from benchmarks.common import Context, Figure, median, print_figures
from benchmarks.datagen import FolderSpec, generate_folder

logger = logging.getLogger(__name__)

#: Side of the fast-mode dataset version and of the default fine-tuning input.
SIDE = 224


def build_project(workdir: Path, count: int, name: str) -> Any:
    """A workspace at ``workdir/name`` with ``count`` generated images, split and
    frozen as a 224 x 224 dataset version; returns the project."""
    from pigeonhole import Workspace
    from pigeonhole.preprocessing import Preprocessing

    source = generate_folder(workdir / f"images-{count}", FolderSpec(count, seed=3))
    root = workdir / name
    shutil.rmtree(root, ignore_errors=True)
    project = Workspace.init(root).create_project(f"Training {count}")
    project.import_path(source)
    project.split(seed=0)
    project.create_version(Preprocessing(resize=(SIDE, SIDE)))
    return project


def fast_mode(ctx: Context) -> list[Figure]:
    """Cold and warm fast-mode wall time against embeddings + LogisticRegression."""
    from pigeonhole.training.runs import train

    count = 200 if ctx.quick else 1000
    project = build_project(ctx.workdir, count, "fast")
    start = time.perf_counter()
    train(project)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    train(project)
    warm = time.perf_counter() - start
    _, base_seconds = train_baseline(project)
    project.workspace.close()
    note = (
        f"{count} images; ours includes the head sweep, calibration, evaluation, "
        "plots, ONNX export and parity check; baseline is embeddings + fit"
    )
    label = f"fast training, {count:,} images"
    return [
        Figure(
            f"{label}, cold cache",
            cold,
            base_seconds,
            "s",
            False,
            target="< 15 s" if count == 1000 else "",
            met=cold < 15 if count == 1000 else None,
            note=note,
        ),
        Figure(
            f"{label}, warm cache",
            warm,
            base_seconds,
            "s",
            False,
            target="< 2 s" if count == 1000 else "",
            met=warm < 2 if count == 1000 else None,
        ),
    ]


def peak_flops(threads: int, side: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of ``repeats`` float32 ``side`` x ``side`` matmuls."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(side, side), torch.randn(side, side)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * side**3 / best


def step_flops(side: int, batch: int) -> float:
    """FLOPs per image of one of our fine-tuning steps (forward and backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pigeonhole.models.backbones import build_backbone
    from pigeonhole.training.finetune import Unfreeze, _unfreeze
    from pigeonhole.training.inputs import ModelInput
    from pigeonhole.training.modules import Classifier

    backbone, dimension = build_backbone("mobilenet_v2", pretrained=False)
    _unfreeze(backbone, Unfreeze.LAST)
    model_input = ModelInput.for_backbone("mobilenet_v2", (side, side))
    model = Classifier(backbone, torch.nn.Linear(dimension, 5), model_input)
    model = model.to(memory_format=torch.channels_last)
    width, height = model_input.size
    pixels = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8)
    with FlopCounterMode(display=False) as counter:
        logits, _ = model(pixels)
        logits.sum().backward()
    return counter.get_total_flops() / batch


def plain_loop_images_per_s(side: int, batch: int, steps: int) -> float:
    """Images/s of a plain eager loop training all of MobileNetV2 (NCHW, SGD)."""
    import torch
    from torchvision.models import mobilenet_v2

    network = mobilenet_v2(num_classes=5)
    network.train()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    pixels = torch.randn(batch, 3, side, side)
    targets = torch.randint(0, 5, (batch,))

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(network(pixels), targets).backward()
        optimizer.step()

    step()
    return batch / median([_seconds(step) for _ in range(steps)])


def fine_tuning(ctx: Context) -> list[Figure]:
    """Our fine-tuning images/s at 224 and 160 px, and its share of peak FLOP/s."""
    import torch

    from pigeonhole.training.finetune import FineTuneConfig, fine_tune

    count = 120 if ctx.quick else 400
    project = build_project(ctx.workdir, count, "fine-tune")
    version = project.version()
    threads = project.workspace.settings.worker_count()
    peak = peak_flops(threads)
    figures: list[Figure] = []
    for side in (224, 160):
        # Two epochs, the second measured: the first also pays for start-up.
        config = FineTuneConfig(epochs=2, image_size=side, patience=2)
        result = fine_tune(version, "mobilenet_v2", config=config)
        ours = float(result.history[-1]["images_per_second"])
        torch.set_num_threads(threads)
        plain = plain_loop_images_per_s(side, config.batch_size, 3 if ctx.quick else 6)
        achieved = ours * step_flops(side, config.batch_size)
        figures += [
            Figure(
                f"fine-tune {side} px, training images/s",
                ours,
                plain,
                "images/s",
                True,
                note="ours: last blocks trained, channels-last, decode and online "
                "augmentation included; baseline: whole network, NCHW, "
                "pre-made tensors",
            ),
            Figure(
                f"fine-tune {side} px, share of peak FLOP/s",
                achieved / 1e9,
                peak / 1e9,
                "GFLOP/s",
                True,
                note=f"peak: {threads}-thread 2048x2048 float32 matmul; ratio is "
                "the share of peak",
            ),
        ]
    project.workspace.close()
    return figures


def run(ctx: Context) -> list[Figure]:
    """Fast-mode wall times, then fine-tuning throughput."""
    return fast_mode(ctx) + fine_tuning(ctx)


def _seconds(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Runs the benchmark standalone and prints each figure with its ratio."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        ctx = Context(quick="--quick" in sys.argv, workdir=Path(scratch), data=None)
        print_figures(run(ctx))


if __name__ == "__main__":
    main()

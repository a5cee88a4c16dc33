"""Prediction speed: batch-1 latency and offline throughput against eager PyTorch.

Ours is the served path: a model package (MobileNetV2 with its ImageNet weights and
a linear head, the ImageNet classifier itself, exported through
``pigeonhole.models.package.write_package``) run by `Predictor` on ONNX Runtime
with the draft JPEG decode, in a child process that never imports torch. The
baseline, measured in the same run, is torchvision's MobileNetV2 in eager PyTorch
with Pillow's full decode, a bicubic resize to 224 x 224 and the same
normalisation.

Figures:
- batch 1, 640x480 JPEG bytes to answer (decode, preprocessing, model, softmax):
  median and p99;
- offline batch prediction over a folder of 640x480 JPEGs, decode included:
  images per second (ours: `predict_stream`, decoding the next batch while the
  model runs this one; baseline: a plain loop over batches of the same size).

Usage:
    python -m benchmarks.bench_predict [--quick]
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.common import (
    Context,
    Figure,
    default_data,
    median,
    percentile,
    print_figures,
)
from benchmarks.datagen import FolderSpec, make_image

SIZE = (640, 480)
BATCH = 16
LATENCY_TARGET_MS = 10.0
SPEEDUP_TARGET = 4.0
THROUGHPUT_TARGET = 150.0
# ImageNet has 1000 classes, a project model a few: answers keep the best five.
TOP_K = 5


def run(ctx: Context) -> list[Figure]:
    """Measures both figures; see the module docstring."""
    latency_n = 40 if ctx.quick else 200
    folder_n = 160 if ctx.quick else 800
    folder = _photos(ctx.workdir / f"photos-{folder_n}", folder_n)
    model = _model_package(ctx.workdir / "model")
    files = jpeg_files(folder)

    ours = ours_in_child(model, folder, latency_n)
    base_latency = baseline_latency(files[: max(20, latency_n // 4)])
    base_rate, base_cpu_ms = baseline_throughput(files)
    return _figures(ours, base_latency, (base_rate, base_cpu_ms), latency_n, folder_n)


def _figures(
    ours: dict[str, Any],
    base_latency: list[float],
    base_throughput: tuple[float, float],
    latency_n: int,
    folder_n: int,
) -> list[Figure]:
    ours_median = median(ours["latency_ms"])
    ours_p99 = percentile(ours["latency_ms"], 99)
    base_median, base_p99 = median(base_latency), percentile(base_latency, 99)
    base_rate, base_cpu_ms = base_throughput
    cores = len(os.sched_getaffinity(0))
    speedup = base_median / ours_median
    return [
        Figure(
            "predict batch 1, 640x480 JPEG bytes to answer, median",
            ours_median,
            base_median,
            "ms",
            False,
            target=f">= {SPEEDUP_TARGET:g}x faster, median < {LATENCY_TARGET_MS:g} ms",
            met=speedup >= SPEEDUP_TARGET and ours_median < LATENCY_TARGET_MS,
            note=f"{latency_n} images; baseline: torchvision MobileNetV2, eager "
            "PyTorch, Pillow full decode",
        ),
        Figure(
            "predict batch 1, 640x480 JPEG bytes to answer, p99",
            ours_p99,
            base_p99,
            "ms",
            False,
            note=f"{latency_n} images (baseline: {len(base_latency)})",
        ),
        Figure(
            "predict folder of 640x480 JPEGs, decode included",
            ours["images_per_s"],
            base_rate,
            "images/s",
            True,
            target=f">= {THROUGHPUT_TARGET:g} images/s",
            met=ours["images_per_s"] >= THROUGHPUT_TARGET,
            note=f"{folder_n} files, batches of {BATCH}; ours overlaps decoding "
            "with the model, the baseline decodes then runs each batch. CPU time "
            f"per image: ours {ours['cpu_ms_per_image']:.1f} ms, baseline "
            f"{base_cpu_ms:.1f} ms; on {cores} idle cores that bounds ours at "
            f"{cores * 1000 / ours['cpu_ms_per_image']:.0f} images/s",
        ),
    ]


def _photos(folder: Path, count: int) -> Path:
    """``count`` photo-like 640x480 JPEGs (shapes on a colour field, sensor noise)."""
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    spec = FolderSpec(count=count, min_size=SIZE, max_size=SIZE, seed=4)
    rng = np.random.default_rng(4)
    for index in range(count):
        pixels = np.asarray(make_image(index, spec), dtype=np.int16)
        noisy = pixels + rng.normal(0, 10, pixels.shape).astype(np.int16)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        image.save(folder / f"{index:05d}.jpg", quality=90)
    marker.write_text("done\n")
    return folder


def _model_package(folder: Path) -> Path:
    """The ImageNet MobileNetV2 as a model package, exported once per work folder."""
    if (folder / "model.json").is_file():
        return folder
    import torch
    from torch import nn
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    from pigeonhole.models.backbones import build_backbone
    from pigeonhole.models.metadata import ModelMetadata
    from pigeonhole.models.package import write_package
    from pigeonhole.preprocessing import Preprocessing
    from pigeonhole.training.inputs import ModelInput
    from pigeonhole.training.modules import Classifier

    backbone, size = build_backbone("mobilenet_v2")
    reference = mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)
    head = nn.Linear(size, 1000)
    with torch.no_grad():
        head.weight.copy_(reference.classifier[1].weight)
        head.bias.copy_(reference.classifier[1].bias)
    model_input = ModelInput.for_backbone("mobilenet_v2")
    classifier = Classifier(backbone, head, model_input).eval()
    names = MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
    metadata = ModelMetadata(
        model_id="imagenet/1",
        project_slug="imagenet",
        project_type="single-label",
        class_names=[f"{i}:{name}" for i, name in enumerate(names)],
        backbone={"name": "mobilenet_v2", "weights_sha256": "", "licence": "BSD-3"},
        input=model_input.to_dict(),
        preprocessing=Preprocessing().to_dict(),
        dataset_version={"id": 0, "manifest_hash": "imagenet"},
    )
    images = [make_image(i, FolderSpec(count=8, seed=9)) for i in range(8)]
    write_package(
        folder,
        classifier,
        metadata,
        input_size=model_input.size,
        ood_reference=None,
        parity_batch=model_input.batch(images),
    )
    return folder


def ours_in_child(model: Path, folder: Path, latency_n: int) -> dict[str, Any]:
    """Runs `measure_ours` in a fresh interpreter, so no torch thread pool is near."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "ours.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.bench_predict",
            "--ours",
            str(model),
            str(folder),
            str(latency_n),
            str(out),
        ]
        root = Path(__file__).resolve().parent.parent
        subprocess.run(command, check=True, cwd=root, env={**os.environ})
        return dict(json.loads(out.read_text()))


def measure_ours(model: Path, folder: Path, latency_n: int) -> dict[str, Any]:
    """Batch-1 latencies (ms) and folder throughput (images/s) of our predictor."""
    from pigeonhole.inference.batch import predict_stream
    from pigeonhole.inference.predictor import Predictor

    predictor = Predictor.load(model)
    files = jpeg_files(folder)
    payloads = [path.read_bytes() for path in files[:latency_n]]
    for data in payloads[:5]:
        predictor.predict(data, top_k=TOP_K)
    latency = []
    for data in payloads:
        started = time.perf_counter()
        predictor.predict(data, top_k=TOP_K)
        latency.append((time.perf_counter() - started) * 1000)
    list(predict_stream(predictor, files[: BATCH * 2], batch_size=BATCH))  # warm-up
    cpu_started, started = _cpu_seconds(), time.perf_counter()
    outcomes = list(predict_stream(predictor, files, batch_size=BATCH, top_k=TOP_K))
    seconds = time.perf_counter() - started
    cpu_ms = (_cpu_seconds() - cpu_started) * 1000 / len(files)
    failed = [outcome.source for outcome in outcomes if not outcome.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} images failed, first {failed[0]}")
    assert "torch" not in sys.modules, "the predictor imported torch"
    return {
        "latency_ms": latency,
        "images_per_s": len(files) / seconds,
        "cpu_ms_per_image": cpu_ms,
    }


def jpeg_files(folder: Path) -> list[Path]:
    """Every JPEG under ``folder``, at any depth, in a stable order."""
    suffixes = {".jpg", ".jpeg"}
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in suffixes)


def _cpu_seconds() -> float:
    """CPU time of this process, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Baseline:
    """torchvision MobileNetV2 in eager PyTorch with Pillow's full decode."""

    def __init__(self) -> None:
        import torch
        from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

        self.torch = torch
        self.model = mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1).eval()
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def tensor(self, data: bytes) -> Any:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image = image.resize((224, 224), Image.Resampling.BICUBIC)
        pixels = self.torch.from_numpy(np.asarray(image).copy())
        return pixels.permute(2, 0, 1).float().div(255)

    def predict(self, batch: list[bytes]) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            tensors = torch.stack([self.tensor(data) for data in batch])
            logits = self.model((tensors - self.mean) / self.std)
            return np.asarray(torch.softmax(logits, dim=1).numpy())


def baseline_latency(files: list[Path]) -> list[float]:
    baseline = _Baseline()
    payloads = [path.read_bytes() for path in files]
    for data in payloads[:3]:
        baseline.predict([data])
    latency = []
    for data in payloads:
        started = time.perf_counter()
        baseline.predict([data])
        latency.append((time.perf_counter() - started) * 1000)
    return latency


def baseline_throughput(files: list[Path]) -> tuple[float, float]:
    """Images per second and CPU milliseconds per image of the baseline."""
    baseline = _Baseline()
    baseline.predict([path.read_bytes() for path in files[:BATCH]])
    cpu_started, started = _cpu_seconds(), time.perf_counter()
    for start in range(0, len(files), BATCH):
        baseline.predict([path.read_bytes() for path in files[start : start + BATCH]])
    seconds = time.perf_counter() - started
    return len(files) / seconds, (_cpu_seconds() - cpu_started) * 1000 / len(files)


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "--ours":
        model, folder, latency_n, out = argv[1:]
        result = measure_ours(Path(model), Path(folder), int(latency_n))
        Path(out).write_text(json.dumps(result))
        return 0
    quick = "--quick" in argv
    workdir = Path(tempfile.gettempdir()) / "pigeonhole-bench-predict"
    workdir.mkdir(exist_ok=True)
    print_figures(run(Context(quick=quick, workdir=workdir, data=default_data())))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

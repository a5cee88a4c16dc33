"""Prediction on real photos (``hymenoptera``), in-process and over HTTP.

The photos are the 397 JPEGs of ``<data>/hymenoptera`` (193 to 2592 pixels a
side), so decoding costs what it costs on a camera's files. The model is the
ImageNet MobileNetV2 package of `benchmarks.bench_predict`.

- in-process: `Predictor.predict` on each file's bytes (batch 1: median and p99)
  and `predict_stream` over the folder (images/s), in a process without torch;
- over HTTP: a real ``pigeonhole serve`` on loopback, each photo sent once as
  ``POST /infer/classification`` with the image in base64 (batch 1, one request
  at a time: median and p99), then all of them again with 8 requests in flight
  (images/s);
- baseline for both, measured in the same run: torchvision's MobileNetV2 in eager
  PyTorch with Pillow's full decode, one image per call for latency and batches
  of 16 for throughput (`benchmarks.bench_predict`).

Run standalone with ``python -m benchmarks.bench_photos``; without the photo sets
it measures nothing.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_http import MODEL_SLUG, Server, build_workspace
from benchmarks.bench_predict import (
    _model_package,
    baseline_latency,
    baseline_throughput,
    jpeg_files,
    ours_in_child,
)
from benchmarks.common import (
    Context,
    Figure,
    default_data,
    median,
    percentile,
    print_figures,
)

#: Requests in flight for the HTTP throughput figure.
CONCURRENCY = 8


def run(ctx: Context) -> list[Figure]:
    """Both sides on every photo; no figures without ``<data>/hymenoptera``."""
    if ctx.data is None or not (ctx.data / "hymenoptera").is_dir():
        return []
    photos = ctx.data / "hymenoptera"
    files = jpeg_files(photos)
    if ctx.quick:
        files = files[:80]
    package = _model_package(ctx.workdir / "model")
    ours = ours_in_child(package, photos, len(files))
    http = _over_http(package, files, ctx.workdir)
    base_ms = baseline_latency(files)
    base_rate, _ = baseline_throughput(files)
    return _figures(len(files), ours, http, base_ms, base_rate)


def _over_http(package: Path, files: list[Path], workdir: Path) -> dict[str, Any]:
    """Batch-1 latencies (ms) and images/s at `CONCURRENCY` through the server."""
    workspace = build_workspace(workdir / "photos-workspace", package)
    bodies = [_body(path.read_bytes()) for path in files]
    server = Server(workspace, workdir / "photos-server.log")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for body in bodies[:5]:  # loads the model and warms the caches
                _checked(client.post("/infer/classification", json=body))
            latency = []
            for body in bodies:
                started = time.perf_counter()
                _checked(client.post("/infer/classification", json=body))
                latency.append((time.perf_counter() - started) * 1000)
        rate = asyncio.run(_throughput(server.url, bodies))
    finally:
        server.close()
    return {"latency_ms": latency, "images_per_s": rate}


async def _throughput(url: str, bodies: list[dict[str, Any]]) -> float:
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                _checked(await client.post("/infer/classification", json=body))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(bodies) / (time.perf_counter() - started)


def _body(jpeg: bytes) -> dict[str, Any]:
    return {
        "model_id": f"{MODEL_SLUG}/1",
        "api_key": "benchmark",
        "image": {"type": "base64", "value": base64.b64encode(jpeg).decode()},
    }


def _checked(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")


def _figures(
    count: int,
    ours: dict[str, Any],
    http: dict[str, Any],
    base_ms: list[float],
    base_rate: float,
) -> list[Figure]:
    note = (
        f"{count} hymenoptera photos; baseline: torchvision MobileNetV2, eager "
        "PyTorch, Pillow full decode"
    )
    figures = []
    for side, measured in (("in-process", ours), ("over HTTP", http)):
        figures += [
            Figure(
                f"photos, predict batch 1 {side}, median",
                median(measured["latency_ms"]),
                median(base_ms),
                "ms",
                False,
                note=note,
            ),
            Figure(
                f"photos, predict batch 1 {side}, p99",
                percentile(measured["latency_ms"], 99),
                percentile(base_ms, 99),
                "ms",
                False,
            ),
            Figure(
                f"photos, predict throughput {side}",
                measured["images_per_s"],
                base_rate,
                "images/s",
                True,
                note=(
                    f"{CONCURRENCY} requests in flight"
                    if side == "over HTTP"
                    else "predict_stream, batches of 16"
                ),
            ),
        ]
    return figures


def main() -> None:
    """Runs the benchmark standalone and prints each figure with its ratio."""
    with tempfile.TemporaryDirectory() as scratch:
        ctx = Context(
            quick="--quick" in sys.argv, workdir=Path(scratch), data=default_data()
        )
        print_figures(run(ctx))


if __name__ == "__main__":
    main()

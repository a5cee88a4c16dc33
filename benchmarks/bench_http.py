"""The REST server under load: requests/s, p99 latency, overhead, errors, memory.

A real ``pigeonhole serve`` process (uvicorn) serves a workspace holding one model
package (the ImageNet MobileNetV2 that ``bench_predict`` exports) as model
``imagenet/1``. An asyncio load generator (httpx, keep-alive connections) on
loopback keeps 1, 8 and 32 requests in flight, each ``POST /infer/classification``
with a 640x480 JPEG in base64, the Roboflow request shape.

Baseline: the same model and bytes through ``Predictor.predict`` in a fresh
process (no HTTP), so the server's overhead is the median request latency at
concurrency 1 minus the median in-process predict. Memory: the server's RSS is
sampled through a soak at concurrency 8, which is also the concurrency-8 level:
120 s in the full run, so the suite fits
its 15 minutes (``PIGEONHOLE_BENCH_SOAK_S=300`` for the 5-minute soak of the
target), 20 s quick.
Micro-batching: requests/s at concurrency 8 and 32 against a second server started
with ``--batch-window-ms 0`` (every request its own predictor call).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Context, Figure, median, peak_memory_of, percentile
from benchmarks.datagen import FolderSpec, make_image

INFER = "/infer/classification"
ROUTE = f"POST {INFER}"
NO_BATCHING = ("--batch-window-ms", "0")
MODEL_SLUG = "imagenet"
OVERHEAD_TARGET_MS = 2.0
RSS_GROWTH_LIMIT = 1.10
#: Seconds of the memory soak (and of the concurrency-8 level) in a full run.
FULL_SOAK_S = 120.0
MIB = 2**20


@dataclass
class Load:
    """What one load level measured."""

    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    rss_mib: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds


def payload_jpeg() -> bytes:
    """The request image: a 640x480 JPEG like the prediction benchmark's."""
    image = make_image(0, FolderSpec(1, min_size=(640, 480), max_size=(640, 480)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_workspace(root: Path, package: Path) -> Path:
    """A workspace with project ``imagenet`` and the package as its model 1."""
    from pigeonhole import Workspace

    shutil.rmtree(root, ignore_errors=True)
    with Workspace.init(root) as workspace:
        workspace.create_project("ImageNet", slug=MODEL_SLUG)
    shutil.copytree(package, root / "models" / MODEL_SLUG / "1")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """``pigeonhole serve --no-auth`` on a free loopback port."""

    def __init__(self, workspace: Path, log: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(Path(sys.executable).parent / "pigeonhole"), "serve"]
        command += [
            "--no-auth",
            "--port",
            str(self.port),
            "--workspace",
            str(workspace),
            *options,
        ]
        self._log = log.open("w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=self._log)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not up after {timeout} s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


async def _load(
    url: str, request: dict[str, Any], concurrency: int, seconds: float, pid: int
) -> Load:
    result = Load(concurrency, seconds)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    response = await client.request(**request)
                    ok = response.status_code == 200
                    why = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as error:
                    ok, why = False, f"{type(error).__name__}: {error}"
                if ok:
                    result.latencies_ms.append((time.perf_counter() - start) * 1e3)
                else:
                    result.errors += 1
                    result.first_error = result.first_error or why

        async def sample_rss() -> None:
            began = time.perf_counter()
            while time.perf_counter() < stop:
                result.rss_mib.append((time.perf_counter() - began, rss_mib(pid)))
                await asyncio.sleep(min(5.0, seconds / 10))

        await asyncio.gather(sample_rss(), *(worker() for _ in range(concurrency)))
    return result


def load(server: Server, request: dict[str, Any], concurrency: int, s: float) -> Load:
    """Keeps ``concurrency`` requests in flight for ``s`` seconds."""
    pid = server.process.pid
    return asyncio.run(_load(server.url, request, concurrency, s, pid))


def in_process_latency_ms(package: str, jpeg: bytes, repeats: int) -> list[float]:
    """Per-call milliseconds of ``Predictor.predict`` on ``jpeg`` (run in a child)."""
    from pigeonhole.inference.predictor import Predictor

    predictor = Predictor.load(Path(package))
    for _ in range(5):
        predictor.predict(jpeg)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(jpeg)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def run(ctx: Context) -> list[Figure]:
    """HTTP figures; see the module docstring."""
    from benchmarks.bench_predict import _model_package

    level_s, soak_s = (3.0, 20.0) if ctx.quick else (6.0, FULL_SOAK_S)
    soak_s = float(os.environ.get("PIGEONHOLE_BENCH_SOAK_S", soak_s))
    package = _model_package(ctx.workdir / "model")
    workspace = build_workspace(ctx.workdir / "workspace", package)
    jpeg = payload_jpeg()
    request = _request(jpeg)
    server = Server(workspace, ctx.workdir / "server.log")
    try:
        server.wait_ready()
        load(server, request, 1, 2.0)  # warm-up: loads the model
        levels = {c: load(server, request, c, level_s) for c in (1, 32)}
        start_rss = rss_mib(server.process.pid)
        # The soak is the concurrency-8 level too: one long load, not two.
        soak = load(server, request, 8, soak_s)
        end_rss = rss_mib(server.process.pid)
        levels = {1: levels[1], 8: soak, 32: levels[32]}
    finally:
        server.close()
    unbatched = _unbatched_levels(ctx, workspace, request, level_s)
    fn = functools.partial(in_process_latency_ms, str(package), jpeg, 50)
    baseline_ms, _ = peak_memory_of(fn)
    ctx.sections["server RSS during the soak"] = _rss_table(soak)
    return [
        *_figures(levels, soak, baseline_ms, start_rss, end_rss),
        *_batching_figures(levels, unbatched),
    ]


def _request(jpeg: bytes) -> dict[str, Any]:
    body = {
        "model_id": f"{MODEL_SLUG}/1",
        "api_key": "benchmark",
        "image": {"type": "base64", "value": base64.b64encode(jpeg).decode()},
    }
    return {"method": "POST", "url": INFER, "json": body}


def _unbatched_levels(
    ctx: Context, workspace: Path, request: dict[str, Any], seconds: float
) -> dict[int, Load]:
    """Concurrency 8 and 32 against a server that never batches."""
    server = Server(workspace, ctx.workdir / "server-unbatched.log", *NO_BATCHING)
    try:
        server.wait_ready()
        load(server, request, 1, 2.0)
        return {c: load(server, request, c, seconds) for c in (8, 32)}
    finally:
        server.close()


def _batching_figures(
    batched: dict[int, Load], unbatched: dict[int, Load]
) -> list[Figure]:
    return [
        Figure(
            f"HTTP {ROUTE}, concurrency {c}, requests/s with micro-batching",
            batched[c].rps,
            level.rps,
            "requests/s",
            True,
            note="baseline: the same server with --batch-window-ms 0; p99 "
            f"{percentile(batched[c].latencies_ms, 99):.1f} ms batched, "
            f"{percentile(level.latencies_ms, 99):.1f} ms not",
        )
        for c, level in unbatched.items()
        if level.latencies_ms and batched[c].latencies_ms
    ]


def _figures(
    levels: dict[int, Load],
    soak: Load,
    baseline_ms: list[float],
    start_rss: float,
    end_rss: float,
) -> list[Figure]:
    in_process = median(baseline_ms)
    figures = []
    for c, level in levels.items():
        if not level.latencies_ms:
            raise RuntimeError(f"no request succeeded at {c}: {level.first_error}")
        figures.append(
            Figure(
                f"HTTP {ROUTE}, concurrency {c}, requests/s",
                level.rps,
                1000 / in_process,
                "requests/s",
                True,
                note="baseline: in-process Predictor.predict, one call at a time; "
                f"p50 {median(level.latencies_ms):.1f} ms",
            )
        )
        figures.append(
            Figure(
                f"HTTP {ROUTE}, concurrency {c}, p99",
                percentile(level.latencies_ms, 99),
                percentile(baseline_ms, 99),
                "ms",
                False,
                note="baseline: in-process predict p99 (one call in flight)",
            )
        )
    one = median(levels[1].latencies_ms)
    overhead = one - in_process
    errors = sum(level.errors for level in [*levels.values(), soak])
    first = next((x.first_error for x in [*levels.values(), soak] if x.errors), "")
    growth = end_rss / start_rss
    return [
        *figures,
        Figure(
            f"HTTP {ROUTE} median latency at concurrency 1",
            one,
            in_process,
            "ms",
            False,
            target=f"overhead < {OVERHEAD_TARGET_MS:g} ms over in-process predict",
            met=overhead < OVERHEAD_TARGET_MS,
            note=f"overhead {overhead:.2f} ms per request; the load generator "
            "shares the 2 cores with the server",
        ),
        Figure(
            "HTTP errors over all levels and the soak",
            errors,
            0,
            "requests",
            False,
            target="no errors",
            met=errors == 0,
            note=first[:300] or "none",
        ),
        Figure(
            f"server RSS after a {soak.seconds:.0f} s soak at concurrency 8",
            end_rss,
            start_rss,
            "MiB",
            False,
            target=f"flat: < {RSS_GROWTH_LIMIT:g}x the RSS at the soak's start",
            met=growth < RSS_GROWTH_LIMIT,
            note=f"baseline column is the RSS at the soak's start; growth "
            f"{growth:.3f}x over {len(soak.latencies_ms)} requests",
        ),
    ]


def _rss_table(soak: Load) -> str:
    lines = ["| seconds | RSS MiB |", "|---|---|"]
    lines += [f"| {t:.0f} | {m:.1f} |" for t, m in soak.rss_mib]
    return "\n".join(lines)

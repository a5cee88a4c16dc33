"""How the dataset costs grow from 1k to 10k to 100k images.

For each size a folder of small generated JPEGs (32x32 to 48x48, so that decoding
does not hide the per-image bookkeeping) is imported into a fresh workspace, then
health-checked (near-duplicate grouping included), split and frozen as a dataset
version. The baseline of every row is the 1k time extrapolated linearly, so the
ratio says how much better than linear the cost grows (1 = exactly linear,
< 1 = worse than linear). The growth exponent between two sizes is
``log(t2 / t1) / log(n2 / n1)``.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Context, Figure
from benchmarks.datagen import FolderSpec, generate_folder

STEPS = ("import", "health", "split", "version")
MAX_EXPONENT = 1.15  # what we accept as "about linear" on a noisy machine


def measure_size(n: int, workdir: Path) -> dict[str, float]:
    """Seconds of each step for ``n`` generated images, in a fresh workspace."""
    from pigeonhole import Workspace

    spec = FolderSpec(n, min_size=(32, 32), max_size=(48, 48), seed=1)
    source = generate_folder(workdir / f"tiny-{n}", spec)
    root = workdir / f"workspace-{n}"
    shutil.rmtree(root, ignore_errors=True)
    workspace = Workspace.init(root)
    project = workspace.create_project(f"Scale {n}")
    steps: dict[str, Callable[[], object]] = {
        "import": lambda: project.import_path(source),
        "health": project.health,
        "split": lambda: project.split(seed=0),
        "version": project.create_version,
    }
    seconds: dict[str, float] = {}
    try:
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name] = time.perf_counter() - start
    finally:
        workspace.close()
        shutil.rmtree(root, ignore_errors=True)
    return seconds


def exponent(n1: int, t1: float, n2: int, t2: float) -> float:
    """Growth exponent between two (size, seconds) points on a log-log plot."""
    return math.log(t2 / t1) / math.log(n2 / n1)


def loglog_table(sizes: list[int], results: dict[int, dict[str, float]]) -> str:
    """Markdown table: seconds per step and the exponent from the previous size."""
    header = "| n | " + " | ".join(f"{s} s | {s} exp" for s in STEPS) + " |"
    lines = [header, "|---|" + "---|---|" * len(STEPS)]
    for i, n in enumerate(sizes):
        cells = [f"{n:,}"]
        for step in STEPS:
            t = results[n][step]
            if i == 0:
                cells += [f"{t:.3f}", "-"]
            else:
                prev = sizes[i - 1]
                k = exponent(prev, results[prev][step], n, t)
                cells += [f"{t:.3f}", f"{k:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(ctx: Context) -> list[Figure]:
    """Scaling figures: every step at the largest size against linear growth."""
    sizes = [1_000, 4_000] if ctx.quick else [1_000, 10_000, 100_000]
    # A small warm-up run first, so the 1k row is not charged with first imports.
    measure_size(200, ctx.workdir)
    results = {n: measure_size(n, ctx.workdir) for n in sizes}
    ctx.sections["log-log table"] = (
        loglog_table(sizes, results)
        + "\n\nexp = growth exponent from the previous size "
        "(1 = linear, 2 = quadratic)."
    )
    base_n = sizes[0]
    figures = []
    for n in sizes[1:]:
        for step in STEPS:
            measured = results[n][step]
            linear = results[base_n][step] * n / base_n
            k = exponent(base_n, results[base_n][step], n, measured)
            figures.append(
                Figure(
                    f"{step}, {n:,} images",
                    measured,
                    linear,
                    "s",
                    False,
                    target=f"about linear (exponent <= {MAX_EXPONENT})",
                    met=k <= MAX_EXPONENT,
                    note=f"baseline: {base_n:,}-image time x {n // base_n}; "
                    f"exponent {k:.2f}",
                )
            )
    return figures

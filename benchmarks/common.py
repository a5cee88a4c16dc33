"""Shared pieces for benchmark modules: figures, context, timing and memory helpers.

Every ``benchmarks/bench_*.py`` module defines ``run(ctx: Context) -> list[Figure]``.
A figure carries our number and a baseline measured in the same run, so that
noisy machines are compared by ratio rather than by absolute time.

Example:
    >>> def run(ctx: Context) -> list[Figure]:
    ...     ours = median(timings(fast_path, repeats=5 if ctx.quick else 20))
    ...     base = median(timings(slow_path, repeats=5 if ctx.quick else 20))
    ...     return [Figure("thing, median", ours * 1e3, base * 1e3, "ms", False)]
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent


def default_data() -> Path | None:
    """The real photo sets: ``$PIGEONHOLE_BENCH_DATA``, else ``../shared/data`` next
    to the repository, when it exists."""
    named = os.environ.get("PIGEONHOLE_BENCH_DATA")
    candidate = Path(named) if named else (REPO / ".." / "shared" / "data").resolve()
    return candidate if candidate.is_dir() else None


def print_figures(figures: Sequence[Figure]) -> None:
    """Prints each figure with its baseline, ratio and target, for standalone runs."""
    for figure in figures:
        target = f"target {figure.target}: {'met' if figure.met else 'missed'}"
        print(
            f"{figure.name}: ours {figure.ours:.4g} {figure.unit}, baseline "
            f"{figure.baseline:.4g} {figure.unit}, {figure.ratio:.2f}x"
            + (f" ({target})" if figure.target else "")
        )
        if figure.note:
            print(f"    {figure.note}")


@dataclass
class Figure:
    """One measured figure: ours against a baseline measured in the same run.

    Attributes:
        name: What was measured, e.g. ``"predict batch 1, median"``.
        ours: Our number, in ``unit``.
        baseline: The baseline's number, in ``unit``.
        unit: Unit of both numbers, e.g. ``"ms"``, ``"images/s"``, ``"MiB"``.
        higher_is_better: True for throughputs, False for times and memory.
        target: The target in words, e.g. ``">= 4x, median < 10 ms"``.
        met: Whether the target is met; None when there is no target.
        note: Anything a reader needs to interpret the figure.
    """

    name: str
    ours: float
    baseline: float
    unit: str
    higher_is_better: bool
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        """How many times better ours is than the baseline (> 1 means better)."""
        if self.higher_is_better:
            num, den = self.ours, self.baseline
        else:
            num, den = self.baseline, self.ours
        if den == 0:
            return math.inf if num > 0 else math.nan
        return num / den


@dataclass
class Context:
    """What a benchmark module gets from the runner.

    Attributes:
        quick: Run a much shorter version (smaller sizes, fewer repeats).
        workdir: Scratch directory owned by this module; generated data may be
            cached here between runs.
        data: Folder of real datasets (like ``../shared/data``), or None.
        sections: Extra Markdown sections (title to body) a module wants in the
            report, such as a log-log scaling table.
    """

    quick: bool
    workdir: Path
    data: Path | None
    sections: dict[str, str] = field(default_factory=dict)


def timings(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns:
        Seconds per call, one entry per timed call.
    """
    for _ in range(warmup):
        fn()
    out: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def median(xs: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not xs:
        raise ValueError("median of an empty sequence; pass at least one value")
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(xs: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation."""
    if not xs:
        raise ValueError("percentile of an empty sequence; pass at least one value")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} is out of range; use a value in 0..100")
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def own_peak_rss() -> int:
    """Peak RSS of this process since it started its program, in bytes.

    Read from ``VmHWM``: ``ru_maxrss`` would also count the parent's memory,
    which a child shares between fork and exec (a benchmark started from a suite
    that had loaded torch read 2.3 GB for a plain loop).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(fn: Callable[[], Any], conn: Any) -> None:
    try:
        result = fn()
        peak = own_peak_rss()
        conn.send((True, result, peak))
    except BaseException as exc:  # reported to the parent
        conn.send((False, f"{type(exc).__name__}: {exc}", 0))
    finally:
        conn.close()


def peak_memory_of(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn`` in a fresh interpreter and return its result and peak RSS.

    The child is started with the ``spawn`` method, so ``fn`` must be picklable
    (a module-level function or a ``functools.partial`` of one) and so must its
    result. The peak includes the interpreter and whatever ``fn`` imports.

    Returns:
        ``(result, peak_rss_bytes)``.

    Raises:
        RuntimeError: When ``fn`` raised in the child; the message carries it.
    """
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe(duplex=False)
    proc = mp.Process(target=_child, args=(fn, child))
    proc.start()
    child.close()
    try:
        ok, result, peak = parent.recv()
    except EOFError as exc:
        proc.join()
        raise RuntimeError(
            f"benchmark child died with exit code {proc.exitcode} before answering"
        ) from exc
    proc.join()
    if not ok:
        raise RuntimeError(f"benchmark child failed: {result}")
    return result, int(peak)


@dataclass
class CommandResult:
    """Outcome of :func:`run_measured`."""

    returncode: int
    seconds: float
    peak_rss: int
    stdout: str
    stderr: str


def run_measured(argv: Sequence[str], cwd: Path | None = None) -> CommandResult:
    """Run a command and measure its wall time and peak RSS (bytes) via ``wait4``.

    The peak can include this process's own memory (see `own_peak_rss`); a child
    that can report its own peak should.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdout=out,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        # Popen.wait() would reap the child and lose its rusage: wait4 gets both.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return CommandResult(
            returncode=proc.returncode,
            seconds=seconds,
            peak_rss=usage.ru_maxrss * 1024,
            stdout=out.read(),
            stderr=err.read(),
        )

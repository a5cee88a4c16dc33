"""Run the benchmark suite and write a JSON and Markdown report.

Usage:
    python -m benchmarks.run [--quick] [--only NAME ...] [--data PATH] [--out DIR]

Every ``benchmarks/bench_*.py`` module is imported and its ``run(ctx)`` called;
a module that fails is reported in the table and the report, and the others
still run. ``NAME`` is the module name without the ``bench_`` prefix
(``import``, ``scaling``, ``http``, ...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.common import Context, Figure, default_data

BENCH_DIR = Path(__file__).resolve().parent


@dataclass
class ModuleResult:
    """Outcome of one benchmark module."""

    name: str
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    error: str = ""


def discover() -> list[str]:
    """Names (without ``bench_``) of the benchmark modules, sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def run_module(name: str, quick: bool, data: Path | None, out: Path) -> ModuleResult:
    """Import ``benchmarks.bench_<name>`` and call its ``run``; never raises."""
    workdir = out / "work" / name
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=quick, workdir=workdir, data=data)
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        figures = list(module.run(ctx))
        error = ""
    except Exception:  # one failing module must not stop the suite
        figures = []
        error = traceback.format_exc()
    return ModuleResult(name, time.perf_counter() - start, figures, ctx.sections, error)


def _num(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    if x == 0 or abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


HEADER = ["module", "figure", "ours", "baseline", "unit", "ratio", "target", "met"]


def rows(results: list[ModuleResult]) -> list[list[str]]:
    """Table rows, one per figure and one per failed module."""
    out: list[list[str]] = []
    for res in results:
        for f in res.figures:
            out.append(
                [
                    res.name,
                    f.name,
                    _num(f.ours),
                    _num(f.baseline),
                    f.unit,
                    f"{_num(f.ratio)}x",
                    f.target,
                    _met(f.met),
                ]
            )
        if res.error:
            last = res.error.strip().splitlines()[-1]
            out.append([res.name, f"FAILED: {last}", "", "", "", "", "", ""])
    return out


def text_table(table: list[list[str]]) -> str:
    """Fixed-width table for the terminal."""
    widths = [max(len(r[i]) for r in [HEADER, *table]) for i in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def markdown_table(table: list[list[str]]) -> str:
    """GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in table:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


def machine() -> dict[str, object]:
    """A short description of the machine the suite ran on."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    return info


def write_reports(
    results: list[ModuleResult], out: Path, quick: bool, total: float
) -> None:
    """Write ``report.json`` and ``report.md`` into ``out``."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    payload = {
        "when": when,
        "quick": quick,
        "seconds": round(total, 1),
        "machine": info,
        "modules": [
            {
                "name": r.name,
                "seconds": round(r.seconds, 1),
                "error": r.error,
                "figures": [{**asdict(f), "ratio": f.ratio} for f in r.figures],
                "sections": r.sections,
            }
            for r in results
        ],
    }
    text = json.dumps(payload, indent=2, default=str, allow_nan=True)
    (out / "report.json").write_text(text + "\n")

    md = [
        f"# Benchmark report ({'quick' if quick else 'full'} run, {when})",
        "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()),
        f"Total time: {total:.0f} s",
        "",
        "Ratio = how many times better ours is than the baseline (> 1 is better).",
        "",
        markdown_table(rows(results)),
        "",
    ]
    for r in results:
        md.append(f"- `{r.name}`: {r.seconds:.0f} s" + (" (FAILED)" if r.error else ""))
    for r in results:
        for f in r.figures:
            if f.note:
                md.append(f"- {r.name} / {f.name}: {f.note}")
    for r in results:
        for title, body in r.sections.items():
            md += ["", f"## {r.name}: {title}", "", body.rstrip()]
    failed = [r for r in results if r.error]
    if failed:
        md += ["", "## Failures"]
        for r in failed:
            md += ["", f"### {r.name}", "", "```", r.error.rstrip(), "```"]
    (out / "report.md").write_text("\n".join(md) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.run``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--quick", action="store_true", help="much shorter run")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="modules to run")
    parser.add_argument("--data", type=Path, default=None, help="real data folder")
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR / "results", help="report folder"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PIGEONHOLE_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )

    available = discover()
    names = args.only or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; "
            f"available: {', '.join(available)}"
        )
    data = args.data if args.data is not None else default_data()
    if data is not None and not data.is_dir():
        parser.error(f"--data {data} is not a folder; pass a folder of datasets")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    results: list[ModuleResult] = []
    start = time.perf_counter()
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        res = run_module(name, args.quick, data, out)
        status = "FAILED" if res.error else "ok"
        print(f"[bench] {name} {status} in {res.seconds:.0f} s", file=sys.stderr)
        if res.error:
            print(res.error, file=sys.stderr)
        results.append(res)
        # Write after every module so that a killed run still leaves a report.
        write_reports(results, out, args.quick, time.perf_counter() - start)
    total = time.perf_counter() - start

    print(text_table(rows(results)))
    print(f"\ntotal {total:.0f} s; report in {out}/report.md and report.json")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

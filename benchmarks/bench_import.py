"""Import speed and peak memory for a folder of generated JPEGs.

Ours: ``Workspace.init`` / ``create_project`` / ``Project.import_path`` in a fresh
process. Baseline, measured in the same run: a plain sequential loop doing the
unavoidable work per file (Pillow open, full decode, sha256, copy of the bytes).
Both run as subprocesses so that peak RSS is that of the work alone.

Run one side by hand with ``python -m benchmarks.bench_import ours SRC DEST``
or ``python -m benchmarks.bench_import baseline SRC DEST``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from PIL import Image

from benchmarks.common import Context, Figure, own_peak_rss, run_measured
from benchmarks.datagen import FolderSpec, generate_folder, image_files

MIB = 2**20
FLAT_LIMIT = 1.25  # peak RSS at 10x the images may grow at most this much


def import_ours(source: Path, dest: Path) -> dict[str, float]:
    """Imports ``source`` into a new workspace at ``dest``; times the import only."""
    from pigeonhole import Workspace

    workspace = Workspace.init(dest)
    project = workspace.create_project("Bench")
    start = time.perf_counter()
    report = project.import_path(source)
    seconds = time.perf_counter() - start
    workspace.close()
    if report.errors:
        raise RuntimeError(f"import refused {len(report.errors)} generated files")
    return {"images": report.added, "seconds": seconds}


def import_baseline(source: Path, dest: Path) -> dict[str, float]:
    """Opens, fully decodes, hashes and copies every image under ``source``."""
    start = time.perf_counter()
    dest.mkdir(parents=True, exist_ok=True)
    files = image_files(source)
    for path in files:
        data = path.read_bytes()
        with Image.open(path) as image:
            image.load()
        digest = hashlib.sha256(data).hexdigest()
        (dest / digest).write_bytes(data)
    return {"images": len(files), "seconds": time.perf_counter() - start}


def _measure(side: str, source: Path, dest: Path) -> tuple[float, float]:
    """Runs one side in a subprocess; returns (images/s, peak RSS in MiB)."""
    shutil.rmtree(dest, ignore_errors=True)
    argv = [sys.executable, "-m", "benchmarks.bench_import", side, str(source)]
    result = run_measured([*argv, str(dest)], cwd=Path(__file__).parent.parent)
    shutil.rmtree(dest, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"{side} import failed: {result.stderr[-2000:]}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer["images"] / answer["seconds"], answer["peak_rss"] / MIB


def run(ctx: Context) -> list[Figure]:
    """Import figures: images/s at the large size, and peak RSS small vs large."""
    small_n, large_n = (250, 1000) if ctx.quick else (1000, 10_000)
    large = generate_folder(ctx.workdir / f"jpeg-{large_n}", FolderSpec(large_n))
    small = generate_folder(ctx.workdir / f"jpeg-{small_n}", FolderSpec(small_n))
    scratch = ctx.workdir / "scratch"

    speed, rss = _measure("ours", large, scratch)
    base_speed, base_rss = _measure("baseline", large, scratch)
    ours_small = _measure("ours", small, scratch)
    growth = rss / ours_small[1]
    label = f"{large_n // 1000}k"
    return [
        Figure(
            f"import {label} JPEGs 320x240..640x480",
            speed,
            base_speed,
            "images/s",
            True,
            note="baseline: sequential open + full decode + sha256 + copy; "
            "ours decodes JPEGs at reduced scale (only the "
            "size and a 32x32 hash thumbnail are needed) on a thread per core",
        ),
        Figure(
            f"import {label}, peak RSS",
            rss,
            base_rss,
            "MiB",
            False,
            note="RSS of the whole importing process (interpreter, SQLAlchemy, "
            "NumPy/SciPy included); baseline is the plain loop's process",
        ),
        Figure(
            f"import peak RSS, {label} vs {small_n // 1000 or small_n}"
            + ("k" if small_n >= 1000 else ""),
            rss,
            ours_small[1],
            "MiB",
            False,
            target=f"flat: {large_n // small_n}x images, < {FLAT_LIMIT}x memory",
            met=growth < FLAT_LIMIT,
            note=f"baseline column is ours at {small_n} images; "
            f"growth {growth:.2f}x for {large_n // small_n}x the images",
        ),
    ]


def _main(argv: list[str]) -> int:
    side, source, dest = argv
    fn = import_ours if side == "ours" else import_baseline
    print(json.dumps(fn(Path(source), Path(dest)) | {"peak_rss": own_peak_rss()}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

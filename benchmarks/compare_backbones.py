"""Which backbone should be the default: test metric and speed of each, per photo set.

For every registered backbone and every real photo set (``benchmarks.bench_accuracy``
builds the projects, with the same splits and centre-crop recipe), fast mode is
trained from a cold embedding cache; the table gives the test metric, the wall time
of the run and the served model's batch-1 predict latency on one photo (median of
50). Not part of ``benchmarks.run``: it answers a design question once, and its
answer is recorded in docs/training.md.

Run with ``python -m benchmarks.compare_backbones``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from benchmarks.bench_accuracy import SETS, build_project
from benchmarks.bench_http import in_process_latency_ms
from benchmarks.common import default_data, median


def main() -> None:
    """Prints one Markdown row per photo set and backbone."""
    from pigeonhole.models.backbones import list_backbones
    from pigeonhole.models.weights import fetch_weights
    from pigeonhole.training.runs import TrainConfig, train
    from pigeonhole.workspace import Workspace

    logging.basicConfig(level=logging.WARNING)
    data = default_data()
    if data is None:
        raise SystemExit("no photo sets: set PIGEONHOLE_BENCH_DATA")
    names = [spec.name for spec in list_backbones()]
    for name in names:
        fetch_weights(name)
    print("| set | backbone | test metric | fast run, cold | predict batch 1 |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for photo_set in SETS:
            root = data / photo_set.name
            workspace = Workspace.init(Path(scratch) / photo_set.name)
            project = build_project(workspace, photo_set, root)
            photo = next(path for path in sorted(root.rglob("*.jpg")))
            for name in names:
                start = time.perf_counter()
                model = train(project, config=TrainConfig(backbone=name))
                seconds = time.perf_counter() - start
                metric = "micro_f1" if photo_set.multi_label else "accuracy"
                latency = median(
                    in_process_latency_ms(str(model.path), photo.read_bytes(), 50)
                )
                print(
                    f"| {photo_set.name} | {name} | {model.metrics[metric]:.3f} "
                    f"| {seconds:.1f} s | {latency:.1f} ms |",
                    flush=True,
                )
            workspace.close()


if __name__ == "__main__":
    main()

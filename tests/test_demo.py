from __future__ import annotations

import gzip
import json
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from pigeonhole.cli.main import cli
from pigeonhole.demo import FASHION_CLASSES, build_demo, read_idx
from pigeonhole.models.weights import fetch_weights
from pigeonhole.workspace import Workspace


def write_idx(folder: Path, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST-shaped IDX files: class k is a bright bar at row 2k."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(FASHION_CLASSES), dtype=np.uint8), per_class)
    images = rng.integers(0, 40, size=(labels.size, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 * label : 2 * label + 4, :] = 255
    folder.mkdir(parents=True)
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(struct.pack(">IIII", 2051, labels.size, 28, 28))
        stream.write(images.tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as stream:
        stream.write(struct.pack(">II", 2049, labels.size))
        stream.write(labels.tobytes())
    return images, labels


def test_idx_files_read_back_as_written(tmp_path: Path) -> None:
    images, labels = write_idx(tmp_path / "idx", per_class=2)

    read_images, read_labels = read_idx(
        tmp_path / "idx" / "train-images-idx3-ubyte.gz",
        tmp_path / "idx" / "train-labels-idx1-ubyte.gz",
    )

    assert np.array_equal(read_images, images)
    assert np.array_equal(read_labels, labels)


def test_demo_without_training_imports_splits_and_versions(tmp_path: Path) -> None:
    write_idx(tmp_path / "idx", per_class=12)

    summary = build_demo(
        tmp_path / "demo", source=tmp_path / "idx", per_class=12, train_model=False
    )
    again = build_demo(
        tmp_path / "demo", source=tmp_path / "idx", per_class=12, train_model=False
    )

    assert summary.imported["added"] == 12 * len(FASHION_CLASSES)
    assert (again.imported["added"], again.imported["unchanged"]) == (0, 120)
    assert sum(summary.split["counts"].values()) == 120
    assert summary.version["id"].endswith("/1")
    assert again.version["id"].endswith("/2")
    assert summary.model == {}
    assert all(Path(plot).is_file() for plot in summary.health_plots)


@pytest.mark.slow
def test_demo_command_trains_a_model_that_learned(tmp_path: Path) -> None:
    fetch_weights("mobilenet_v2")
    write_idx(tmp_path / "idx", per_class=15)
    root = tmp_path / "demo"

    result = CliRunner().invoke(
        cli,
        ["demo", str(root), "--source", str(tmp_path / "idx"), "--per-class", "15"],
    )

    assert result.exit_code == 0, result.output
    assert "Model fashion-mnist/1" in result.output
    with Workspace.open(root) as workspace:
        models = workspace.project("fashion-mnist").models()
    assert [model.model_id for model in models] == ["fashion-mnist/1"]
    assert (models[0].path / "model.onnx").is_file()
    # Ten classes: chance is 0.1; the bars are easy to tell apart.
    assert models[0].metrics["accuracy"] > 0.5


@pytest.mark.slow
def test_demo_serves_the_model_and_predicts_over_http(tmp_path: Path) -> None:
    fetch_weights("mobilenet_v2")
    write_idx(tmp_path / "idx", per_class=15)
    command = [
        sys.executable,
        "-m",
        "pigeonhole",
        "demo",
        str(tmp_path / "demo"),
        "--source",
        str(tmp_path / "idx"),
        "--per-class",
        "15",
        "--serve",
        "--port",
        str(free_port()),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        lines = read_until(process, "curl -X POST", extra=1)
        serving = next(line for line in lines if line.startswith("Serving "))
        curl, answer = lines[-2].strip(), json.loads(lines[-1])
        base = serving.split(" at ")[1].split(" ")[0]
        health = httpx.get(f"{base}/health")
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)

    assert code == 0
    assert health.status_code == 200
    # The printed curl line is one a user can paste: it names the model, a key
    # and the sample image, and the server answered it in Roboflow's shape.
    assert curl.startswith(f"curl -X POST '{base}/fashion-mnist/1?api_key=ph_")
    sample = Path(curl.split("file=@")[1].rstrip("'"))
    assert sample.is_file()
    assert answer["top"] == sample.parent.name
    assert answer["predictions"][0]["class"] == answer["top"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def read_until(process: subprocess.Popen[str], marker: str, *, extra: int) -> list[str]:
    """Lines of the process's stdout up to the one holding ``marker`` and
    ``extra`` more; fails if the process ends first."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or marker not in lines[-1]:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the demo ended before {marker!r}: {lines[-5:]}")
        lines.append(line.rstrip("\n"))
    lines += [process.stdout.readline().rstrip("\n") for _ in range(extra)]
    return lines

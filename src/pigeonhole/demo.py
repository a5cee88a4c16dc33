"""The demo workspace: Fashion-MNIST photos through the same path users take.

The images come from Debian's ``dataset-fashion-mnist`` package (MIT licence), which
installs the original IDX files under ``/usr/share/datasets/fashion-mnist``. They are
written out as PNG class folders and imported with the ordinary importer, then
health-checked, split, frozen as a dataset version and, unless asked not to, used to
train a fast model (frozen MobileNetV2 embeddings and a linear head) that
``pigeonhole predict`` and ``pigeonhole serve`` can answer with.

Example:
    >>> from pigeonhole.demo import build_demo
    >>> summary = build_demo(Path("demo-workspace"))  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.errors import NotFoundError, PigeonholeError, ValidationError
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.progress import Progress, report
from pigeonhole.project import Project
from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
DEMO_PROJECT = "fashion-mnist"


@dataclass
class DemoSummary:
    """What the demo built, for the CLI to print."""

    workspace: Path
    project: str
    images_folder: Path
    imported: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    version: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    health_text: str = ""
    health_plots: list[str] = field(default_factory=list)
    sample_image: str = ""


def read_idx(images_gz: Path, labels_gz: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads an IDX image file and its label file (both gzip-compressed).

    Returns:
        ``(images, labels)``: uint8 arrays of shape (N, rows, cols) and (N,).

    Raises:
        ValidationError: A file does not have the IDX magic number or sizes.
    """
    with gzip.open(images_gz, "rb") as file:
        magic, count, rows, cols = struct.unpack(">IIII", file.read(16))
        if magic != 2051:
            raise ValidationError(f"{images_gz}: not an IDX image file (magic {magic})")
        pixels = np.frombuffer(file.read(count * rows * cols), dtype=np.uint8)
    with gzip.open(labels_gz, "rb") as file:
        magic, label_count = struct.unpack(">II", file.read(8))
        if magic != 2049 or label_count != count:
            raise ValidationError(
                f"{labels_gz}: not the IDX label file of {images_gz.name}"
            )
        labels = np.frombuffer(file.read(label_count), dtype=np.uint8)
    return pixels.reshape(count, rows, cols), labels


def write_fashion_folders(
    source: Path, destination: Path, *, per_class: int, progress: Progress | None = None
) -> Path:
    """Writes ``per_class`` Fashion-MNIST training images per class as PNG folders.

    Raises:
        NotFoundError: The Debian package's files are not at ``source``.
    """
    images_gz = source / "train-images-idx3-ubyte.gz"
    labels_gz = source / "train-labels-idx1-ubyte.gz"
    if not images_gz.is_file() or not labels_gz.is_file():
        raise NotFoundError(
            f"Fashion-MNIST is not installed at {source}; install Debian's package "
            "with `sudo apt-get install dataset-fashion-mnist` or pass --source"
        )
    pixels, labels = read_idx(images_gz, labels_gz)
    written = 0
    total = per_class * len(FASHION_CLASSES)
    for class_id, name in enumerate(FASHION_CLASSES):
        folder = destination / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(labels == class_id)[:per_class]:
            target = folder / f"{name}-{index:05d}.png"
            if not target.exists():
                Image.fromarray(pixels[index], mode="L").save(target)
            written += 1
            if written % 100 == 0:
                report(progress, "write", written, total)
    return destination


def build_demo(
    root: Path,
    *,
    source: Path = FASHION_MNIST,
    per_class: int = 200,
    train_model: bool = True,
    progress: Progress | None = None,
) -> DemoSummary:
    """Builds (or refreshes) the demo workspace at ``root``.

    Running it again is safe: images already written or imported are skipped, and
    a new dataset version is frozen (and a new model trained on it).

    Args:
        root: The workspace folder; the PNG class folders go beside it.
        source: Folder holding the Fashion-MNIST IDX files.
        per_class: Images written per class.
        train_model: Train a fast model on the new version (fetches the MobileNetV2
            weights on first use).
        progress: Called with ``(phase, done, total)``.
    """
    images = write_fashion_folders(
        source,
        root.parent / f"{root.name}-images",
        per_class=per_class,
        progress=progress,
    )
    workspace = Workspace.init(root)
    project = _demo_project(workspace)
    imported = project.import_path(images, progress=progress)
    summary = DemoSummary(workspace.root, project.slug, images)
    summary.imported = {
        "found": imported.found,
        "added": imported.added,
        "unchanged": imported.unchanged,
        "duplicates": len(imported.duplicates),
        "refused": len(imported.errors),
    }
    summary.split = project.split(seed=0).to_dict()
    _health(project, workspace.root / "reports" / project.slug / "health", summary)
    version = project.create_version(
        Preprocessing(resize=(64, 64)),
        Augmentation(flip_horizontal=True, brightness=0.15, multiplier=2),
        seed=0,
        progress=progress,
    )
    summary.version = {
        "id": version.id,
        "manifest_hash": version.manifest_hash,
        "files": version.counts["files"],
    }
    test_images = project.images(split="test", limit=1)
    if test_images:
        summary.sample_image = str(images / test_images[0].filename)
    if train_model:
        summary.model = _train(project, version.number, progress)
    return summary


def _train(project: Project, version: int, progress: Progress | None) -> dict[str, Any]:
    from pigeonhole.training.runs import train

    model = train(project, version, progress=progress)
    return {
        "model_id": model.model_id,
        "path": str(model.path),
        "metrics": model.metrics,
    }


def _health(project: Project, folder: Path, summary: DemoSummary) -> None:
    from pigeonhole.datasets.health import render_text, write_plots

    health = project.health()
    summary.health_text = render_text(health)
    summary.health_plots = [str(path) for path in write_plots(health, folder)]


def _demo_project(workspace: Workspace) -> Project:
    try:
        return workspace.project(DEMO_PROJECT)
    except PigeonholeError:
        return workspace.create_project(
            "Fashion-MNIST", slug=DEMO_PROJECT, classes=FASHION_CLASSES
        )

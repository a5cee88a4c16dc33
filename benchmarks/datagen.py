"""Generated image folders for the import and scaling benchmarks.

Images are cached in the benchmark's work folder: a folder is complete when its
``.complete`` marker exists, so an interrupted generation is redone, not reused.
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star", "stripes")


@dataclass(frozen=True)
class FolderSpec:
    """A class-folder tree of generated images.

    Attributes:
        count: Number of images.
        min_size: Smallest (width, height).
        max_size: Largest (width, height).
        fmt: ``"JPEG"`` or ``"PNG"``.
        seed: Makes the folder reproducible.
    """

    count: int
    min_size: tuple[int, int] = (320, 240)
    max_size: tuple[int, int] = (640, 480)
    fmt: str = "JPEG"
    seed: int = 0

    @property
    def suffix(self) -> str:
        return ".jpg" if self.fmt == "JPEG" else ".png"


def make_image(index: int, spec: FolderSpec) -> Image.Image:
    """One varied image: a smooth random colour field and a few random shapes."""
    rng = random.Random(spec.seed * 1_000_003 + index)
    width = rng.randint(spec.min_size[0], spec.max_size[0])
    height = rng.randint(spec.min_size[1], spec.max_size[1])
    low = np.random.default_rng(rng.getrandbits(32)).integers(
        0, 256, size=(rng.randint(2, 6), rng.randint(2, 6), 3), dtype=np.uint8
    )
    image = Image.fromarray(low).resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 8)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width, x0 + rng.randint(4, max(5, width // 2)))
        y1 = min(height, y0 + rng.randint(4, max(5, height // 2)))
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image


def _write_range(args: tuple[Path, FolderSpec, int, int]) -> None:
    root, spec, start, stop = args
    for index in range(start, stop):
        folder = root / CLASSES[index % len(CLASSES)]
        path = folder / f"img_{index:06d}{spec.suffix}"
        image = make_image(index, spec)
        if spec.fmt == "JPEG":
            image.save(path, "JPEG", quality=85)
        else:
            image.save(path, "PNG", compress_level=1)


def generate_folder(root: Path, spec: FolderSpec, workers: int = 2) -> Path:
    """Writes ``spec.count`` images under ``root/<class>/`` once; returns ``root``."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text().strip() == repr(spec):
        return root
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    step = 500
    jobs = [
        (root, spec, s, min(s + step, spec.count)) for s in range(0, spec.count, step)
    ]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_range, jobs))
    else:
        for job in jobs:
            _write_range(job)
    marker.write_text(repr(spec) + "\n")
    return root


def image_files(root: Path) -> list[Path]:
    """Every generated image under ``root``, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.suffix in (".jpg", ".png"))

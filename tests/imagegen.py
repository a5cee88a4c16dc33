"""Small synthetic datasets and broken files, written into a test's ``tmp_path``.

Every picture is drawn with Pillow: a background and a few rectangles and ellipses
whose colours and places come from a seed, so that different names give pictures far
apart in perceptual hash and the same name always gives the same bytes.

Dataset builders return a :class:`Dataset` that says what an importer should find:
the layout, the class names in order and, per file (named as the importer names it,
relative to the source root), its labels and split.
"""

from __future__ import annotations

import csv
import io
import random
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pigeonhole.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)

SIZE = (40, 32)
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# Pictures and encodings


def picture(seed: int | str, size: tuple[int, int] = SIZE) -> Image.Image:
    """A picture of coloured shapes, the same for the same seed."""
    if isinstance(seed, str):
        seed = zlib.crc32(seed.encode())
    rng = random.Random(seed)
    image = Image.new("RGB", size, _colour(rng))
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(8):
        x0, x1 = sorted(rng.randrange(width) for _ in range(2))
        y0, y1 = sorted(rng.randrange(height) for _ in range(2))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape((x0, y0, x1 + 4, y1 + 4), fill=_colour(rng))
    return image


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def encode(image: Image.Image, format: str = "PNG", **options: object) -> bytes:
    """The image's file bytes in ``format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def png(seed: int | str, size: tuple[int, int] = SIZE) -> bytes:
    """PNG bytes of :func:`picture`."""
    return encode(picture(seed, size))


def jpeg(seed: int | str, size: tuple[int, int] = SIZE, quality: int = 90) -> bytes:
    """JPEG bytes of :func:`picture`."""
    return encode(picture(seed, size), "JPEG", quality=quality)


def near_copy(seed: int | str) -> bytes:
    """The picture of ``png(seed)`` re-encoded as a high-quality JPEG: other bytes,
    a perceptual hash within a few bits."""
    return jpeg(seed, quality=95)


def write(path: Path, data: bytes) -> Path:
    """Writes ``data`` at ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_picture(root: Path, name: str, salt: str = "") -> Path:
    """Writes the picture seeded by ``salt + name`` at ``root / name``, as PNG or JPEG
    by the name's suffix."""
    path = root / name
    if path.suffix.lower() in (".jpg", ".jpeg"):
        return write(path, jpeg(salt + name))
    return write(path, png(salt + name))


# Datasets in every layout


@dataclass(frozen=True)
class Dataset:
    """What an importer should find in a source.

    Attributes:
        path: The folder or ``.zip`` to import.
        layout: The layout name the import report should give.
        class_names: Class names in the order the project should get them.
        labels: Per file, as the importer names it, its labels (sorted).
        splits: Per file, its split value, or None.
        multi_label: Whether the source needs a multi-label project.
    """

    path: Path
    layout: str
    class_names: list[str]
    labels: dict[str, tuple[str, ...]]
    splits: dict[str, str | None]
    multi_label: bool = False

    @property
    def project_type(self) -> str:
        return "multi-label" if self.multi_label else "single-label"

    @property
    def has_splits(self) -> bool:
        return any(split is not None for split in self.splits.values())


def class_folders(root: Path, salt: str = "") -> Dataset:
    """``root/<class>/<image>`` with odd file names and one loose, unlabelled image."""
    files = {
        "cat/one.png": ("cat",),
        "cat/tabby two.jpg": ("cat",),
        "cat/three.png": ("cat",),
        "dog/café, brun.png": ("dog",),
        "dog/two.jpg": ("dog",),
        "dog/три.png": ("dog",),
        "fish/one.png": ("fish",),
        "fish/two.png": ("fish",),
        "loose.png": (),
    }
    for name in files:
        write_picture(root, name, salt)
    splits: dict[str, str | None] = dict.fromkeys(files)
    return Dataset(root, "class-folders", ["cat", "dog", "fish"], files, splits)


def split_class_folders(root: Path, valid: str = "valid", salt: str = "") -> Dataset:
    """``root/{train,<valid>,test}/<class>/<image>``; ``valid`` may be ``val``."""
    counts = {"train": 4, valid: 2, "test": 1}
    labels: dict[str, tuple[str, ...]] = {}
    splits: dict[str, str | None] = {}
    for folder, count in counts.items():
        for class_name in ("ant", "bee"):
            for index in range(count):
                name = f"{folder}/{class_name}/{class_name}{index}.png"
                write_picture(root, name, salt)
                labels[name] = (class_name,)
                splits[name] = "valid" if folder == valid else folder
    return Dataset(root, "split-class-folders", ["ant", "bee"], labels, splits)


def roboflow_multilabel(root: Path, salt: str = "") -> Dataset:
    """A Roboflow multi-label export: split folders of images and ``_classes.csv``.

    Roboflow writes a space after each comma, and a file name with a comma is
    quoted; one image has no label at all.
    """
    classes = ["cat", "dog", "bird"]
    rows = {
        "train": [
            ("a.jpg", (1, 0, 0)),
            ("b.jpg", (1, 1, 0)),
            ("c, with comma.jpg", (0, 1, 1)),
            ("d.jpg", (0, 0, 1)),
            ("e.jpg", (0, 0, 0)),
        ],
        "valid": [("f.jpg", (1, 0, 1)), ("g.jpg", (0, 1, 0))],
        "test": [("h.jpg", (1, 1, 1))],
    }
    labels: dict[str, tuple[str, ...]] = {}
    splits: dict[str, str | None] = {}
    for split, members in rows.items():
        lines = ["filename, " + ", ".join(classes)]
        for filename, flags in members:
            write_picture(root / split, filename, salt + split)
            quoted = f'"{filename}"' if "," in filename else filename
            lines.append(", ".join([quoted, *map(str, flags)]))
            name = f"{split}/{filename}"
            labels[name] = tuple(
                sorted(c for c, f in zip(classes, flags, strict=True) if f)
            )
            splits[name] = split
        (root / split / "_classes.csv").write_text("\n".join(lines) + "\n")
    return Dataset(
        root, "roboflow-multilabel", classes, labels, splits, multi_label=True
    )


def labels_csv(root: Path, salt: str = "") -> Dataset:
    """``labels.csv`` of ``filename,labels,split`` beside ``images/``.

    Some rows have a split and some do not; one image is in the folder but not in
    the table, so it comes in unlabelled.
    """
    rows = [
        ("p1.png", "red", "train"),
        ("p2.png", "red", ""),
        ("sub/p3.png", "blue", "val"),
        ("p, 4.png", "blue", "test"),
        ("p5.png", "green", "train"),
    ]
    labels: dict[str, tuple[str, ...]] = {}
    splits: dict[str, str | None] = {}
    root.mkdir(parents=True, exist_ok=True)
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["filename", "labels", "split"])
        for filename, label, split in rows:
            write_picture(root / "images", filename, salt)
            writer.writerow([filename, label, split])
            labels[filename] = (label,)
            splits[filename] = {"val": "valid"}.get(split, split) or None
    write_picture(root / "images", "unlisted.png", salt)
    labels["unlisted.png"] = ()
    splits["unlisted.png"] = None
    return Dataset(root, "csv", ["red", "blue", "green"], labels, splits)


def unlabelled(root: Path, count: int = 5, salt: str = "") -> Dataset:
    """A flat folder of images with no labels."""
    names = [f"photo {index}.png" for index in range(count)]
    for name in names:
        write_picture(root, name, salt)
    labels: dict[str, tuple[str, ...]] = dict.fromkeys(names, ())
    return Dataset(root, "class-folders", [], labels, dict.fromkeys(names))


def zipped(dataset: Dataset, archive: Path, *, wrap: str | None = None) -> Dataset:
    """The same dataset as a ``.zip``, optionally inside one top-level folder."""
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(dataset.path.rglob("*")):
            if path.is_file():
                name = path.relative_to(dataset.path).as_posix()
                bundle.write(path, f"{wrap}/{name}" if wrap else name)
    return replace(dataset, path=archive)


# Broken and unusual files


def truncated_jpeg() -> bytes:
    """A JPEG cut off halfway through its image data."""
    data = jpeg("truncated", size=(64, 64))
    return data[: len(data) // 2]


def text_as_jpeg() -> bytes:
    """Plain text, to be saved under an image name."""
    return b"this is not a picture, just some words in a .jpg\n"


@cache
def png_bomb(side: int = 20_000) -> bytes:
    """A bilevel PNG of ``side`` x ``side`` black pixels; it compresses to kilobytes.

    Written chunk by chunk: Pillow would take seconds to compress the 50 MB of a
    20000 x 20000 bitmap, while compressing one repeated row takes a fraction.
    """
    row = bytes(1 + (side + 7) // 8)  # filter type 0, then the packed bits
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", pixels), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(*chunk) for chunk in chunks)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    checksum = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)


def cmyk_jpeg(colour: tuple[int, int, int, int] = (0, 255, 255, 0)) -> bytes:
    """A CMYK JPEG of one colour (red by default)."""
    return encode(Image.new("CMYK", (32, 32), colour), "JPEG", quality=95)


def sixteen_bit_png(left: int, right: int) -> bytes:
    """A 16-bit greyscale PNG (mode ``I;16``), ``left`` and ``right`` halves."""
    values = np.full((16, 32), left, dtype=np.uint16)
    values[:, 16:] = right
    return encode(Image.fromarray(values))


def palette_png_with_transparency() -> bytes:
    """A palette PNG: left half transparent, right half opaque blue."""
    image = Image.new("P", (32, 16), 0)
    image.putpalette([*RED, *BLUE] + [0] * (256 - 2) * 3)
    ImageDraw.Draw(image).rectangle((16, 0, 31, 15), fill=1)
    return encode(image, transparency=0)


def animated_gif(first: tuple[int, int, int], second: tuple[int, int, int]) -> bytes:
    """A two-frame GIF: one colour, then another."""
    frames = [Image.new("RGB", (24, 24), colour) for colour in (first, second)]
    return encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100
    )


def upright_with_marker(size: tuple[int, int] = (32, 48)) -> Image.Image:
    """A white picture, taller than wide, with a red square at its top-left corner."""
    image = Image.new("RGB", size, WHITE)
    ImageDraw.Draw(image).rectangle((0, 0, 9, 9), fill=RED)
    return image


def exif_rotated_jpeg(orientation: int) -> bytes:
    """A JPEG stored on its side that shows :func:`upright_with_marker` when turned
    by its EXIF ``orientation`` (6: turn clockwise, 8: turn anticlockwise)."""
    stored = {
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    rotated = upright_with_marker().transpose(stored)
    return encode(rotated, "JPEG", quality=95, exif=exif.tobytes())


#: Files that are images in unusual forms; every one must import.
ODD_GOOD_FILES = {
    "cmyk.jpg": cmyk_jpeg,
    "sixteen bit.png": lambda: sixteen_bit_png(1000, 60000),
    "palette, transparent.png": palette_png_with_transparency,
    "animated.gif": lambda: animated_gif(RED, BLUE),
    "rotated-6.jpg": lambda: exif_rotated_jpeg(6),
    "rotated-8.jpg": lambda: exif_rotated_jpeg(8),
    "naïve café 写真.png": lambda: png("non-ascii"),
}

#: Broken files and the error each must raise.
BAD_FILES: dict[str, tuple[Callable[[], bytes], type[ImageError]]] = {
    "truncated.jpg": (truncated_jpeg, CorruptImageError),
    "empty.png": (lambda: b"", UnsupportedImageError),
    "words.jpg": (text_as_jpeg, UnsupportedImageError),
    "bomb.png": (png_bomb, ImageTooLargeError),
}


def write_corpus(folder: Path) -> tuple[list[str], dict[str, type[ImageError]]]:
    """Writes :data:`ODD_GOOD_FILES` and :data:`BAD_FILES` into ``folder``.

    Returns:
        The good file names, and per bad file name the error it should raise.
    """
    for name, make in ODD_GOOD_FILES.items():
        write(folder / name, make())
    bad: dict[str, type[ImageError]] = {}
    for name, (make, error) in BAD_FILES.items():
        write(folder / name, make())
        bad[name] = error
    return list(ODD_GOOD_FILES), bad


def unsafe_zip(archive: Path, member: str, *, link: bool = False) -> Path:
    """A zip with one good image and one member named ``member`` (``../evil.jpg``,
    an absolute path) or, with ``link``, a symbolic link of that name."""
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("good.png", png("good"))
        info = zipfile.ZipInfo(member)
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, "/etc/passwd")
        else:
            bundle.writestr(info, jpeg("evil"))
    return archive

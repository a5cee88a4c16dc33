"""The one safe path from bytes to pixels.

Every image that enters Pigeonhole, by import, upload or prediction, is decoded here:
the format is checked against a short list of parsers, the pixel count against the
decompression-bomb limit, EXIF orientation is applied, the first frame of an animation
is taken and every mode (CMYK, 16-bit, palette with transparency, greyscale, alpha) is
normalised to 8-bit RGB. Failures raise a subclass of :class:`ImageError` that names
the file and the reason, so that a batch can report it and go on.

Example:
    >>> from pigeonhole.images import decode
    >>> data = open("photo.jpg", "rb").read()  # doctest: +SKIP
    >>> image = decode(data, name="photo.jpg")  # doctest: +SKIP
    >>> image.mode
    'RGB'
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.fft import dctn

from pigeonhole.config import settings
from pigeonhole.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)

#: Formats whose parsers we trust with user files; others are refused unread.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # MPO opens through JPEG

#: File suffixes that importers treat as images.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".mpo"}
)

#: EXIF orientations that swap width and height.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})

_HASH_SIDE = 32  # pHash: DCT over a 32x32 greyscale thumbnail, keep the 8x8 corner


@dataclass(frozen=True)
class ImageInfo:
    """What import records about an image.

    Attributes:
        sha256: Hex digest of the file's bytes: the image's identity.
        width: Width in pixels after EXIF orientation.
        height: Height in pixels after EXIF orientation.
        format: Pillow's name of the file format, such as ``"JPEG"``.
        mode: Pillow's mode of the stored pixels before normalisation.
        phash: 64-bit perceptual hash as 16 hex digits.
    """

    sha256: str
    width: int
    height: int
    format: str
    mode: str
    phash: str


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def decode(
    data: bytes,
    *,
    name: str = "<bytes>",
    max_pixels: int | None = None,
    orient: bool = True,
) -> Image.Image:
    """Decodes image bytes to an upright 8-bit RGB image.

    Args:
        data: The file's bytes.
        name: How to name the image in error messages (a filename or URL).
        max_pixels: Decompression-bomb limit; ``None`` uses the configured one.
        orient: Apply the EXIF orientation; False keeps the pixels as stored
            (a dataset version whose recipe turns ``auto_orient`` off).

    Returns:
        A loaded ``RGB`` image, with EXIF orientation applied unless ``orient`` is
        False.

    Raises:
        UnsupportedImageError: Empty, not an image, or a format not in :data:`FORMATS`.
        ImageTooLargeError: More pixels than ``max_pixels``.
        CorruptImageError: Truncated or damaged data.
    """
    image = _open(data, name, max_pixels)
    return to_rgb(_load_upright(image, name, orient))


def read(path: str | Path, *, max_pixels: int | None = None) -> Image.Image:
    """Reads and decodes an image file; see :func:`decode`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnsupportedImageError(
            f"{path}: cannot be read ({error.strerror})"
        ) from None
    return decode(data, name=str(path), max_pixels=max_pixels)


def inspect(data: bytes, *, name: str = "<bytes>") -> ImageInfo:
    """Checks that ``data`` decodes and returns its identity, size and hash.

    JPEGs decode at reduced scale (libjpeg's DCT scaling) since only the size from the
    header and a 32x32 thumbnail are needed; the whole stream is still read, so
    truncation is still caught.

    Raises:
        ImageError: As :func:`decode`.
    """
    image = _open(data, name, None)
    width, height = image.size
    source_format, source_mode = image.format or "", image.mode
    orientation = _orientation(image)
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", (_HASH_SIDE * 2, _HASH_SIDE * 2))
    image = _load_upright(image, name)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(
        sha256=sha256_bytes(data),
        width=width,
        height=height,
        format=source_format,
        mode=source_mode,
        phash=perceptual_hash(to_rgb(image)),
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Normalises any Pillow mode to 8-bit RGB.

    Transparent pixels are composited onto white, 16- and 32-bit greyscale is scaled
    to 8 bits rather than clipped, and CMYK goes through Pillow's conversion.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _wide_grey_to_rgb(image)
    if mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash as 16 hex digits.

    Near-duplicates (resized, re-encoded, slightly brightened) land within a few bits
    of each other; unrelated photos differ in about half of the 64.
    """
    grey = image.convert("L").resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.BOX)
    coefficients = dctn(np.asarray(grey, dtype=np.float64), norm="ortho")[:8, :8]
    flat = coefficients.ravel()
    # The DC term only says how bright the image is; leave it out of the median.
    bits = flat > np.median(flat[1:])
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _open(data: bytes, name: str, max_pixels: int | None) -> Image.Image:
    if not data:
        raise UnsupportedImageError(f"{name}: empty file (0 bytes)")
    limit = settings().max_pixels if max_pixels is None else max_pixels
    Image.init()  # registers every plugin once, so that ``formats`` can name them
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"{name}: not an image in a supported format ({', '.join(FORMATS)})"
        ) from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"{name}: too many pixels to decode safely (limit {limit:,}); "
            "raise PIGEONHOLE_MAX_PIXELS if the image is genuine"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:
        raise CorruptImageError(f"{name}: damaged image header ({error})") from None
    width, height = image.size
    if width * height > limit:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} = {width * height:,} pixels is over the limit "
            f"of {limit:,}; raise PIGEONHOLE_MAX_PIXELS if the image is genuine"
        )
    if width == 0 or height == 0:
        raise CorruptImageError(f"{name}: image has no pixels ({width}x{height})")
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block must not lose the image
        return 1


def _load_upright(image: Image.Image, name: str, orient: bool = True) -> Image.Image:
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        image.load()
        upright = ImageOps.exif_transpose(image) if orient else image
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError) as error:
        reason = str(error) or type(error).__name__
        if "truncated" in reason:
            reason = "truncated: the file ends before the image data does"
        raise CorruptImageError(f"{name}: cannot decode ({reason})") from None
    return upright if upright is not None else image


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        # The mode fixes the range, so a dark 16-bit picture stays dark.
        values = values / 257.0
    elif image.mode == "F" and values.size and values.max() <= 1.0:
        values = values * 255.0
    elif values.size and values.max() > 255:
        values = values / 257.0  # 16-bit range onto 8 bits
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")

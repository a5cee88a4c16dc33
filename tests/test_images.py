from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

import imagegen
from pigeonhole import images
from pigeonhole.config import DEFAULT_NEAR_DUPLICATE_DISTANCE
from pigeonhole.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)

ENTRY_POINTS = [images.decode, images.inspect]
ENTRY_IDS = ["decode", "inspect"]

BAD = [
    ("truncated.jpg", imagegen.truncated_jpeg, CorruptImageError, "truncated"),
    ("empty.png", lambda: b"", UnsupportedImageError, "empty file"),
    ("words.jpg", imagegen.text_as_jpeg, UnsupportedImageError, "not an image"),
    ("bomb.png", imagegen.png_bomb, ImageTooLargeError, "too many pixels"),
    (
        "big.png",
        lambda: imagegen.png_bomb(9_000),
        ImageTooLargeError,
        "9000x9000 = 81,000,000 pixels is over the limit",
    ),
]


def pixel(image: Image.Image, xy: tuple[int, int]) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)[xy[1], xy[0]]


@pytest.mark.parametrize("function", ENTRY_POINTS, ids=ENTRY_IDS)
@pytest.mark.parametrize(
    ("name", "make", "error", "reason"), BAD, ids=[case[0] for case in BAD]
)
def test_bad_file_raises_its_error_naming_the_file(
    function: Callable[..., object],
    name: str,
    make: Callable[[], bytes],
    error: type[ImageError],
    reason: str,
) -> None:
    with pytest.raises(error, match=rf"^{re.escape(name)}: .*{re.escape(reason)}"):
        function(make(), name=name)


def test_bad_files_are_all_image_errors() -> None:
    for name, (make, error) in imagegen.BAD_FILES.items():
        assert issubclass(error, ImageError), name
        with pytest.raises(error):
            images.decode(make(), name=name)


def test_read_names_the_path(tmp_path) -> None:
    path = imagegen.write(tmp_path / "folder with space" / "cut.jpg", b"")

    with pytest.raises(UnsupportedImageError, match=re.escape(str(path))):
        images.read(path)
    with pytest.raises(UnsupportedImageError, match=r"missing\.png: cannot be read"):
        images.read(tmp_path / "missing.png")


def test_pixel_limit_can_be_lowered() -> None:
    data = imagegen.png("small")

    message = r"40x32 = 1,280 pixels is over the limit of 100"
    with pytest.raises(ImageTooLargeError, match=message):
        images.decode(data, name="small.png", max_pixels=100)
    assert images.decode(data, max_pixels=1_280).size == (40, 32)


@pytest.mark.parametrize("name", list(imagegen.ODD_GOOD_FILES))
def test_odd_good_files_decode_to_rgb(name: str) -> None:
    data = imagegen.ODD_GOOD_FILES[name]()

    decoded = images.decode(data, name=name)
    info = images.inspect(data, name=name)

    assert decoded.mode == "RGB"
    assert (info.width, info.height) == decoded.size
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{16}", info.phash)


@pytest.mark.parametrize("orientation", [6, 8], ids=["orientation6", "orientation8"])
def test_exif_orientation_gives_upright_pixels(orientation: int) -> None:
    data = imagegen.exif_rotated_jpeg(orientation)
    assert Image.open(io.BytesIO(data)).size == (48, 32)  # stored on its side

    decoded = images.decode(data, name="rotated.jpg")
    info = images.inspect(data, name="rotated.jpg")

    assert decoded.size == (32, 48)
    assert (info.width, info.height) == (32, 48)
    red, white = [255, 0, 0], [255, 255, 255]
    np.testing.assert_allclose(pixel(decoded, (3, 3)), red, atol=40)
    for corner in [(28, 3), (3, 44), (28, 44)]:
        np.testing.assert_allclose(pixel(decoded, corner), white, atol=40)
    expected = images.perceptual_hash(imagegen.upright_with_marker())
    assert images.hamming(info.phash, expected) <= DEFAULT_NEAR_DUPLICATE_DISTANCE


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (1000, 60000, (4, 233)),
        (0, 65535, (0, 255)),
        (200, 250, (1, 1)),
    ],
    ids=["mixed", "full-range", "all-dark"],
)
def test_sixteen_bit_is_scaled_not_clipped(
    left: int, right: int, expected: tuple[int, int]
) -> None:
    data = imagegen.sixteen_bit_png(left, right)
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    decoded = images.decode(data, name="deep.png")

    assert tuple(pixel(decoded, (2, 2))) == (expected[0],) * 3
    assert tuple(pixel(decoded, (30, 2))) == (expected[1],) * 3


def _rgba_half_red() -> bytes:
    image = Image.new("RGBA", (32, 16), (0, 0, 255, 0))
    image.paste((255, 0, 0, 128), (16, 0, 32, 16))
    return imagegen.encode(image)


def _la_grey() -> bytes:
    image = Image.new("LA", (32, 16), (0, 0))
    image.paste((0, 255), (16, 0, 32, 16))
    return imagegen.encode(image)


@pytest.mark.parametrize(
    ("make", "opaque"),
    [
        (imagegen.palette_png_with_transparency, (0, 0, 255)),
        (_rgba_half_red, (255, 127, 127)),
        (_la_grey, (0, 0, 0)),
    ],
    ids=["palette", "rgba", "grey-alpha"],
)
def test_transparency_is_composited_on_white(
    make: Callable[[], bytes], opaque: tuple[int, int, int]
) -> None:
    decoded = images.decode(make(), name="clear.png")

    assert tuple(pixel(decoded, (4, 8))) == imagegen.WHITE
    np.testing.assert_allclose(pixel(decoded, (24, 8)), opaque, atol=1)


def test_animated_gif_gives_its_first_frame() -> None:
    data = imagegen.animated_gif(imagegen.GREEN, imagegen.BLUE)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2

    decoded = images.decode(data, name="moving.gif")

    np.testing.assert_allclose(pixel(decoded, (12, 12)), imagegen.GREEN, atol=8)


def test_cmyk_becomes_rgb_of_the_same_colour() -> None:
    data = imagegen.cmyk_jpeg((0, 255, 255, 0))

    decoded = images.decode(data, name="print.jpg")
    info = images.inspect(data, name="print.jpg")

    assert (info.format, info.mode) == ("JPEG", "CMYK")
    np.testing.assert_allclose(pixel(decoded, (16, 16)), imagegen.RED, atol=30)


def test_inspect_records_the_source_format_and_size() -> None:
    data = imagegen.jpeg("photo", size=(64, 48))

    info = images.inspect(data, name="photo.jpg")

    assert (info.format, info.mode, info.width, info.height) == ("JPEG", "RGB", 64, 48)


def test_perceptual_hash_is_near_for_a_copy_and_far_for_another_picture() -> None:
    original = images.inspect(imagegen.png("tulip")).phash
    copy = images.inspect(imagegen.near_copy("tulip")).phash
    other = images.inspect(imagegen.png("daisy")).phash

    assert images.hamming(original, copy) <= DEFAULT_NEAR_DUPLICATE_DISTANCE
    assert images.hamming(original, other) >= 16


def test_hamming_counts_differing_bits() -> None:
    assert images.hamming("0" * 16, "0" * 16) == 0
    assert images.hamming("0" * 16, "f" * 16) == 64
    assert images.hamming("00000000000000ff", "000000000000000f") == 4

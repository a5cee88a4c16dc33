from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pigeonhole.errors import ValidationError
from pigeonhole.preprocessing import Preprocessing, ResizeMode

WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def solid(size: tuple[int, int], colour: tuple[int, int, int] = WHITE) -> Image.Image:
    return Image.new("RGB", size, colour)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def striped(size: tuple[int, int], edge: int) -> Image.Image:
    """Blue picture with red bands ``edge`` pixels wide on the left and right."""
    image = solid(size, BLUE)
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, 0, edge - 1, height - 1), fill=RED)
    draw.rectangle((width - edge, 0, width - 1, height - 1), fill=RED)
    return image


SOURCES = [(640, 480), (480, 640), (300, 300), (1, 1), (1000, 3), (3, 1000), (97, 13)]
TARGETS = [(224, 224), (160, 96), (7, 300), (1, 1)]


@pytest.mark.parametrize("mode", list(ResizeMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize("source", SOURCES, ids=lambda size: f"from{size[0]}x{size[1]}")
@pytest.mark.parametrize("target", TARGETS, ids=lambda size: f"to{size[0]}x{size[1]}")
def test_every_mode_gives_exactly_the_target_size(
    mode: ResizeMode, source: tuple[int, int], target: tuple[int, int]
) -> None:
    result = Preprocessing(resize=target, resize_mode=mode).apply(solid(source))

    assert result.size == target
    assert result.mode == "RGB"


def test_no_resize_keeps_the_size_and_pixels() -> None:
    image = striped((37, 11), edge=3)

    result = Preprocessing().apply(image)

    assert result.size == (37, 11)
    assert result.tobytes() == image.tobytes()


def test_stretch_fills_the_target_and_keeps_left_and_right() -> None:
    result = Preprocessing(resize=(40, 200)).apply(striped((300, 100), edge=150))

    assert pixels(result)[:, :18].tolist() == [[list(RED)] * 18] * 200
    assert pixels(result)[:, 22:].tolist() == [[list(RED)] * 18] * 200


@pytest.mark.parametrize(
    ("source", "target", "padding"),
    [
        ((200, 100), (100, 100), {"top": 25, "bottom": 25, "left": 0, "right": 0}),
        ((100, 300), (90, 90), {"top": 0, "bottom": 0, "left": 30, "right": 30}),
        ((100, 33), (64, 64), {"top": 21, "bottom": 22, "left": 0, "right": 0}),
        ((50, 50), (80, 40), {"top": 0, "bottom": 0, "left": 20, "right": 20}),
    ],
    ids=[
        "wide-in-square",
        "tall-in-square",
        "odd-leftover-goes-below",
        "square-in-wide",
    ],
)
def test_fit_letterboxes_the_short_sides_with_the_fill_colour(
    source: tuple[int, int], target: tuple[int, int], padding: dict[str, int]
) -> None:
    fill = (10, 200, 30)
    recipe = Preprocessing(resize=target, resize_mode=ResizeMode.FIT, fill=fill)

    result = pixels(recipe.apply(solid(source)))

    height, width = result.shape[:2]
    top, bottom = padding["top"], height - padding["bottom"]
    left, right = padding["left"], width - padding["right"]
    is_fill = (result == fill).all(axis=-1)
    is_white = (result == WHITE).all(axis=-1)
    assert is_white[top:bottom, left:right].all()
    assert is_fill.sum() == height * width - (bottom - top) * (right - left)


def test_fit_is_black_by_default() -> None:
    recipe = Preprocessing(resize=(50, 50), resize_mode=ResizeMode.FIT)

    result = pixels(recipe.apply(solid((100, 50))))

    assert (result[:12] == 0).all()
    assert (result[-12:] == 0).all()
    assert (result[13:37] == 255).all()


def test_fit_keeps_the_aspect_ratio_of_the_content() -> None:
    image = solid((120, 60), BLUE)
    ImageDraw.Draw(image).ellipse((30, 0, 89, 59), fill=WHITE)  # a circle
    recipe = Preprocessing(resize=(100, 100), resize_mode=ResizeMode.FIT)

    white = (pixels(recipe.apply(image)) > 200).all(axis=-1)

    rows, columns = np.nonzero(white)
    assert abs((rows.max() - rows.min()) - (columns.max() - columns.min())) <= 1


@pytest.mark.parametrize(
    ("source", "edge"),
    [((300, 100), 90), ((301, 120), 80), ((2000, 500), 700)],
    ids=["wide", "odd-width", "large"],
)
def test_center_crop_keeps_the_centre_and_cuts_the_sides(
    source: tuple[int, int], edge: int
) -> None:
    recipe = Preprocessing(resize=(64, 64), resize_mode=ResizeMode.CENTER_CROP)

    result = pixels(recipe.apply(striped(source, edge)))

    assert (result == BLUE).all(axis=-1).all()


def test_center_crop_of_a_tall_image_cuts_top_and_bottom() -> None:
    image = solid((100, 300), RED)
    ImageDraw.Draw(image).rectangle((0, 90, 99, 209), fill=BLUE)
    recipe = Preprocessing(resize=(50, 50), resize_mode=ResizeMode.CENTER_CROP)

    result = pixels(recipe.apply(image))

    assert (result == BLUE).all(axis=-1).all()


def test_center_crop_scales_the_centre_to_cover_the_target() -> None:
    image = solid((400, 200), BLUE)
    ImageDraw.Draw(image).rectangle((150, 50, 249, 149), fill=WHITE)  # centre 100x100
    recipe = Preprocessing(resize=(100, 100), resize_mode=ResizeMode.CENTER_CROP)

    white = (pixels(recipe.apply(image)) > 128).all(axis=-1)

    # The 200x200 centre becomes 100x100, so the white square shrinks to 50x50.
    assert white.sum() == pytest.approx(50 * 50, abs=100)
    assert white[50, 50]
    assert not white[5, 5]


@pytest.mark.parametrize(
    "mode", [None, *ResizeMode], ids=["no-resize", *(m.value for m in ResizeMode)]
)
def test_grayscale_gives_three_equal_channels(mode: ResizeMode | None) -> None:
    image = striped((90, 60), edge=20)
    ImageDraw.Draw(image).ellipse((30, 10, 60, 40), fill=(30, 220, 90))
    resize = None if mode is None else (45, 45)
    recipe = Preprocessing(
        resize=resize, resize_mode=mode or ResizeMode.STRETCH, grayscale=True
    )

    result = recipe.apply(image)

    values = pixels(result)
    assert result.mode == "RGB"
    assert (values[..., 0] == values[..., 1]).all()
    assert (values[..., 1] == values[..., 2]).all()
    assert len(np.unique(values)) > 2


def test_grayscale_uses_luma() -> None:
    recipe = Preprocessing(grayscale=True)

    red, blue = (recipe.apply(solid((4, 4), c)).getpixel((0, 0)) for c in (RED, BLUE))

    assert red == (76, 76, 76)  # 0.299 * 255
    assert blue == (29, 29, 29)  # 0.114 * 255


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"], ids=str)
def test_other_modes_come_out_rgb(mode: str) -> None:
    image = solid((30, 20)).convert(mode)

    result = Preprocessing(resize=(10, 10)).apply(image)

    assert result.mode == "RGB"
    assert result.size == (10, 10)


RECIPES = [
    Preprocessing(),
    Preprocessing(resize=(224, 160), resize_mode=ResizeMode.FIT, fill=(1, 2, 3)),
    Preprocessing(auto_orient=False, resize=(8192, 1), grayscale=True),
    Preprocessing(resize=(1, 8192), resize_mode=ResizeMode.CENTER_CROP),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=["default", "fit", "gray", "crop"])
def test_dict_round_trips_through_json(recipe: Preprocessing) -> None:
    data = json.loads(json.dumps(recipe.to_dict()))

    assert Preprocessing.from_dict(data) == recipe


def test_to_dict_is_plain_json() -> None:
    recipe = Preprocessing(resize=(224, 160), resize_mode=ResizeMode.CENTER_CROP)

    assert recipe.to_dict() == {
        "auto_orient": True,
        "resize": [224, 160],
        "resize_mode": "center-crop",
        "grayscale": False,
        "fill": [0, 0, 0],
    }


def test_from_dict_fills_in_defaults_and_normalises_types() -> None:
    recipe = Preprocessing.from_dict({"resize": [32, 16], "resize_mode": "fit"})

    assert recipe == Preprocessing(resize=(32, 16), resize_mode=ResizeMode.FIT)
    assert recipe.resize == (32, 16)
    assert recipe.resize_mode is ResizeMode.FIT


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"size": [1, 2]},
            r"unknown preprocessing setting\(s\) 'size'; accepted: auto",
        ),
        ({"resize": [0, 2]}, r"resize=\[0, 2\] must be \(width, height\)"),
        ({"resize_mode": "zoom"}, r"resize mode 'zoom' is not one of: stretch, fit"),
        ([("resize", [1, 2])], r"must be a mapping of settings, not list"),
    ],
    ids=["unknown-key", "bad-size", "bad-mode", "not-a-mapping"],
)
def test_from_dict_rejects_bad_data(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Preprocessing.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"resize": (0, 10)}, r"resize=\(0, 10\) .* from 1 to 8192 pixels"),
        ({"resize": (10, 8193)}, r"resize=\(10, 8193\)"),
        ({"resize": (10.5, 3)}, r"resize=\(10.5, 3\) .* whole number"),
        ({"resize": (True, 3)}, r"resize=\(True, 3\)"),
        ({"resize": (1, 2, 3)}, r"resize=\(1, 2, 3\) must be \(width, height\)"),
        ({"resize": "224"}, r"resize='224'"),
        ({"fill": (256, 0, 0)}, r"fill=\(256, 0, 0\) .* from 0 to 255"),
        ({"fill": (0, 0)}, r"fill=\(0, 0\) must be an \(r, g, b\) colour"),
        ({"resize_mode": "zoom"}, r"'zoom' is not one of: stretch, fit, center-crop"),
        ({"grayscale": "yes"}, r"grayscale='yes' must be true or false"),
        ({"auto_orient": 1}, r"auto_orient=1 must be true or false"),
    ],
    ids=[
        "zero-width",
        "too-tall",
        "fractional",
        "bool-side",
        "three-sides",
        "string-size",
        "fill-over-255",
        "fill-two-channels",
        "unknown-mode",
        "grayscale-string",
        "orient-int",
    ],
)
def test_invalid_settings_are_refused(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Preprocessing(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("224", (224, 224)),
        ("224x160", (224, 160)),
        (" 320 X 240 ", (320, 240)),
        ("1x8192", (1, 8192)),
    ],
    ids=["square", "width-by-height", "spaces-and-capital", "extremes"],
)
def test_parse_size(text: str, size: tuple[int, int]) -> None:
    assert Preprocessing.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "abc",
            r"size 'abc' is not WIDTH or WIDTHxHEIGHT in pixels; write it like 224",
        ),
        ("224x", r"size '224x' is not WIDTH or WIDTHxHEIGHT"),
        ("-5", r"size '-5' is not WIDTH"),
        ("2.5", r"size '2.5' is not WIDTH"),
        ("0", r"resize=\(0, 0\) .* from 1 to 8192"),
        ("10x9000", r"resize=\(10, 9000\) .* from 1 to 8192"),
    ],
    ids=["word", "missing-height", "negative", "fraction", "zero", "too-big"],
)
def test_parse_size_rejects(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Preprocessing.parse_size(text)


@pytest.mark.parametrize(
    ("text", "mode"),
    [("fit", ResizeMode.FIT), ("Center_Crop", ResizeMode.CENTER_CROP)],
    ids=["plain", "underscore-and-case"],
)
def test_resize_mode_parse(text: str, mode: ResizeMode) -> None:
    assert ResizeMode.parse(text) is mode

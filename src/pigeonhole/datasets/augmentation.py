"""Augmentation: extra, randomly altered copies of training images.

When a dataset version is generated, each image of the train split (only that split:
valid and test must measure real images) is written :attr:`Augmentation.multiplier`
times. Copy 0 is the preprocessed image unchanged; every further copy has the enabled
operations applied with random strengths.

Randomness comes from :func:`seeded_rng`, which depends only on the version's seed,
the image's sha256 and the copy's index. The same version therefore regenerates
byte-identical images whatever the order or parallelism of processing, with the same
NumPy and Pillow versions.

Example:
    >>> from PIL import Image
    >>> from pigeonhole.datasets.augmentation import Augmentation
    >>> recipe = Augmentation.parse("flip-h,rotation=15,brightness=0.2", multiplier=3)
    >>> copies = recipe.outputs(Image.new("RGB", (64, 48)), seed=7, image_sha256="ab12")
    >>> [copy.size for copy in copies]
    [(64, 48), (64, 48), (64, 48)]
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from pigeonhole.errors import ValidationError
from pigeonhole.images import to_rgb

#: Accepted range and unit of each continuous operation.
LIMITS: dict[str, tuple[float, float, str]] = {
    "rotation": (0.0, 180.0, "degrees"),
    "crop": (0.0, 0.9, "fraction of each side"),
    "brightness": (0.0, 1.0, "fraction of the full range"),
    "exposure": (0.0, 1.0, "fraction of gain"),
    "blur": (0.0, 25.0, "pixels of Gaussian radius"),
    "noise": (0.0, 0.5, "fraction of pixels"),
    "hue": (0.0, 180.0, "degrees"),
    "saturation": (0.0, 1.0, "fraction"),
}

#: Names of the on/off operations in :meth:`Augmentation.parse` specs.
FLAGS: dict[str, str] = {
    "flip-h": "flip_horizontal",
    "flip-v": "flip_vertical",
    "rot90": "rotate90",
}

MAX_MULTIPLIER = 50

_ROTATIONS = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
)

# RGB to YIQ. Hue turns the (I, Q) chroma plane and saturation scales it, so luma (Y)
# is kept exactly until values clip: a hue shift must not make the picture darker.
_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
)
_FROM_YIQ = np.linalg.inv(_TO_YIQ)


@dataclass(frozen=True)
class Augmentation:
    """An augmentation recipe; every operation is off by default.

    Continuous values are maxima: each copy draws its own strength uniformly between
    none and the maximum (in both directions where that makes sense).

    Attributes:
        flip_horizontal: Mirror left to right with probability 0.5.
        flip_vertical: Mirror top to bottom with probability 0.5.
        rotate90: Turn by 0, 90, 180 or 270 degrees, equally likely. A quarter turn
            swaps width and height; it is the only operation that changes the size.
        rotation: Rotate by up to this many degrees either way about the centre,
            keeping the size; corners left empty are black.
        crop: Zoom in on a random region whose sides are up to this fraction shorter
            than the image's, and scale it back to the input size.
        brightness: Add up to this fraction of 255 to every channel, or subtract it.
        exposure: Multiply every channel by a gain between ``1 - exposure`` and
            ``1 + exposure``.
        blur: Gaussian blur with a radius of up to this many pixels.
        noise: Replace up to this fraction of pixels with random colours (salt and
            pepper noise in colour).
        hue: Turn hue by up to this many degrees either way, keeping luma.
        saturation: Scale colourfulness by up to this fraction up or down.
        multiplier: Images written per training image, the original included.

    Raises:
        ValidationError: A value outside its range (see :data:`LIMITS`), a
            multiplier outside 1 to 50, or a multiplier above 1 with nothing enabled.
    """

    flip_horizontal: bool = False
    flip_vertical: bool = False
    rotate90: bool = False
    rotation: float = 0.0
    crop: float = 0.0
    brightness: float = 0.0
    exposure: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    hue: float = 0.0
    saturation: float = 0.0
    multiplier: int = 1

    def __post_init__(self) -> None:
        for name in FLAGS.values():
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(
                    f"augmentation {name}={getattr(self, name)!r} must be true or false"
                )
        for name, (low, high, unit) in LIMITS.items():
            object.__setattr__(
                self, name, _checked_number(name, getattr(self, name), low, high, unit)
            )
        self._check_multiplier()

    @property
    def is_identity(self) -> bool:
        """Whether no operation is enabled, so that every copy equals the input."""
        return not any(getattr(self, name) for name in (*FLAGS.values(), *LIMITS))

    def augment(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        """Returns one randomly altered copy of ``image``.

        Operations run in a fixed order: flips, quarter turn, rotation, crop, then
        exposure, brightness, hue and saturation together, blur, and noise last so
        that it stays sharp. Random numbers are drawn only for enabled operations.

        Args:
            image: An ``RGB`` image (other modes are normalised to RGB first).
            rng: Source of randomness; the same image and generator state give
                byte-identical pixels.

        Returns:
            An ``RGB`` image of the input's size, or with width and height swapped
            after a 90 or 270 degree turn.
        """
        image = self._geometric(to_rgb(image), rng)
        image = self._photometric(image, rng)
        if self.blur:
            radius = rng.uniform(0.0, self.blur)
            image = image.filter(ImageFilter.GaussianBlur(radius))
        if self.noise:
            image = _colour_noise(image, rng.uniform(0.0, self.noise), rng)
        return image

    def outputs(
        self, image: Image.Image, seed: int, image_sha256: str
    ) -> list[Image.Image]:
        """All the images a training image contributes to a dataset version.

        Args:
            image: The preprocessed image.
            seed: The dataset version's augmentation seed.
            image_sha256: The image's identity, so that each image gets its own draws.

        Returns:
            :attr:`multiplier` images. Copy 0 is ``image`` itself, unaltered; copy
            ``k`` (1 and up) is :meth:`augment` with ``seeded_rng(seed, image_sha256,
            k)``. With a multiplier of 1 the recipe therefore has no effect.
        """
        copies = [image]
        for index in range(1, self.multiplier):
            copies.append(self.augment(image, seeded_rng(seed, image_sha256, index)))
        return copies

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-safe values; :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Augmentation:
        """Reads a recipe written by :meth:`to_dict`; missing keys take defaults.

        Raises:
            ValidationError: ``data`` is not a mapping, has unknown keys, or holds a
                value out of range.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"augmentation must be a mapping of settings, not {type(data).__name__}"
            )
        accepted = [field.name for field in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in accepted)
        if unknown:
            raise ValidationError(
                f"unknown augmentation setting(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(accepted)}"
            )
        return cls(**data)

    @classmethod
    def parse(cls, spec: str, multiplier: int = 1) -> Augmentation:
        """Reads a comma-separated CLI spec.

        Flags are ``flip-h``, ``flip-v`` and ``rot90``; the other operations take a
        maximum, as in ``rotation=15``. An empty spec enables nothing.

        Example:
            >>> Augmentation.parse("flip-h,blur=1.5", multiplier=2).blur
            1.5

        Raises:
            ValidationError: An unknown or repeated name, a flag given a value, an
                operation without one, or a value out of range.
        """
        values: dict[str, Any] = {}
        for token in spec.split(","):
            if not token.strip():
                continue
            name, value = _parse_token(token)
            if name in values:
                raise ValidationError(
                    f"augmentation {token.strip()!r} is repeated in {spec!r}; "
                    "give each operation once"
                )
            values[name] = value
        return cls(**values, multiplier=multiplier)

    def _check_multiplier(self) -> None:
        value = self.multiplier
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError(f"multiplier={value!r} must be a whole number")
        if not 1 <= value <= MAX_MULTIPLIER:
            raise ValidationError(
                f"multiplier={value} is outside 1 to {MAX_MULTIPLIER} images per "
                "training image"
            )
        if value > 1 and self.is_identity:
            raise ValidationError(
                f"multiplier={value} needs at least one augmentation enabled, or its "
                "extra copies would equal the original; enable one or use multiplier=1"
            )

    def _geometric(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if self.flip_horizontal and rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.flip_vertical and rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if self.rotate90:
            turn = _ROTATIONS[int(rng.integers(4))]
            image = image if turn is None else image.transpose(turn)
        if self.rotation:
            angle = rng.uniform(-self.rotation, self.rotation)
            image = image.rotate(
                angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0)
            )
        if self.crop:
            image = _zoom_crop(image, rng.uniform(0.0, self.crop), rng)
        return image

    def _photometric(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if not (self.exposure or self.brightness or self.hue or self.saturation):
            return image
        gain, shift, angle, chroma = 1.0, 0.0, 0.0, 1.0
        if self.exposure:
            gain = rng.uniform(1 - self.exposure, 1 + self.exposure)
        if self.brightness:
            shift = rng.uniform(-self.brightness, self.brightness) * 255
        if self.hue:
            angle = rng.uniform(-self.hue, self.hue)
        if self.saturation:
            chroma = rng.uniform(1 - self.saturation, 1 + self.saturation)
        matrix = (gain * _colour_matrix(angle, chroma)).astype(np.float32)
        return _apply_colour(image, matrix, np.float32(shift))


def seeded_rng(seed: int, image_sha256: str, copy_index: int) -> np.random.Generator:
    """A random generator determined only by its three arguments.

    Hashing the three together makes every (image, copy) draw independent of the
    order in which images are processed and of how the work is split across workers.

    Args:
        seed: The dataset version's augmentation seed.
        image_sha256: The image's identity.
        copy_index: Which copy of the image, from 1 for augmented copies.

    Raises:
        ValidationError: A seed or copy index that is not a whole number, or a
            negative copy index.
    """
    for name, value in (("seed", seed), ("copy_index", copy_index)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError(f"{name}={value!r} must be a whole number")
    if copy_index < 0:
        raise ValidationError(f"copy_index={copy_index} must be 0 or more")
    key = f"pigeonhole-augmentation\0{seed}\0{image_sha256}\0{copy_index}"
    digest = hashlib.sha256(key.encode()).digest()
    # PCG64 is named rather than left to default_rng, whose algorithm may change.
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big")))


def _parse_token(token: str) -> tuple[str, Any]:
    name, has_value, raw = (part.strip() for part in token.partition("="))
    name = name.lower()
    if name in FLAGS:
        if has_value:
            raise ValidationError(
                f"augmentation {name} is on or off and takes no value"
            )
        return FLAGS[name], True
    if name not in LIMITS:
        accepted = [*FLAGS, *(f"{limit}=MAX" for limit in LIMITS)]
        raise ValidationError(
            f"unknown augmentation {name!r}; accepted: {', '.join(accepted)}"
        )
    if not raw:
        example = f"{name}={LIMITS[name][1] / 4:g}"
        raise ValidationError(f"augmentation {name} needs a maximum, such as {example}")
    try:
        return name, float(raw)
    except ValueError:
        raise ValidationError(f"augmentation {name}={raw!r} is not a number") from None


def _checked_number(
    name: str, value: object, low: float, high: float, unit: str
) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValidationError(f"augmentation {name}={value!r} must be a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValidationError(
            f"augmentation {name}={value!r} is outside {low:g} to {high:g} ({unit})"
        )
    return float(value)


def _zoom_crop(
    image: Image.Image, fraction: float, rng: np.random.Generator
) -> Image.Image:
    width, height = image.size
    crop_width, crop_height = width * (1 - fraction), height * (1 - fraction)
    left = rng.uniform(0.0, width - crop_width)
    top = rng.uniform(0.0, height - crop_height)
    box = (left, top, left + crop_width, top + crop_height)
    return image.resize(image.size, Image.Resampling.BICUBIC, box=box)


def _colour_matrix(hue_degrees: float, chroma: float) -> np.ndarray:
    """RGB-to-RGB matrix that turns hue and scales chroma in YIQ space."""
    theta = math.radians(hue_degrees)
    cos, sin = math.cos(theta) * chroma, math.sin(theta) * chroma
    in_yiq = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    return _FROM_YIQ @ in_yiq @ _TO_YIQ


def _apply_colour(
    image: Image.Image, matrix: np.ndarray, shift: np.float32
) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # Channel by channel rather than with a matrix product: element-wise float
    # arithmetic is exactly reproducible, a BLAS call need not be.
    channels = [row[0] * red + row[1] * green + row[2] * blue + shift for row in matrix]
    result = np.rint(np.clip(np.stack(channels, axis=-1), 0, 255)).astype(np.uint8)
    return Image.fromarray(result)


def _colour_noise(
    image: Image.Image, fraction: float, rng: np.random.Generator
) -> Image.Image:
    pixels = np.array(image)
    replaced = rng.random(pixels.shape[:2]) < fraction
    count = int(replaced.sum())
    pixels[replaced] = rng.integers(0, 256, size=(count, 3), dtype=np.uint8)
    return Image.fromarray(pixels)

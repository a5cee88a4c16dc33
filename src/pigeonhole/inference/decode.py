"""From an input image to the pixels a model takes, fast and through the safe path.

The pixels are those of the training path: `pigeonhole.images.decode`, then the
dataset version's `Preprocessing`, then the stretch to the model input size that
``pigeonhole.training.inputs.ModelInput.prepare`` applies. One shortcut differs:
a JPEG is decoded with Pillow's ``draft``, which lets libjpeg scale the picture down
by 1/2, 1/4 or 1/8 while decoding. The scale is chosen so that the decoded picture
is never smaller than what the first resize needs, so the resize still only ever
shrinks, but it starts from libjpeg's downscale rather than the full picture. The
pixels then differ slightly from the training path (a few levels per channel) and
top-1 predictions agree; every other format gives identical pixels.

Example:
    >>> from pigeonhole.inference.decode import ModelPixels
    >>> recipe = ModelPixels(Preprocessing(), input_size=(224, 224))  # doctest: +SKIP
    >>> recipe.from_bytes(data, name="photo.jpg").pixels.shape  # doctest: +SKIP
    (224, 224, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pigeonhole.errors import UnsupportedImageError, ValidationError
from pigeonhole.images import (
    _TRANSPOSING_ORIENTATIONS,
    _load_upright,
    _open,
    _orientation,
    to_rgb,
)
from pigeonhole.preprocessing import Preprocessing, ResizeMode

# TODO: images.py has no public way to decode with a draft size, so this module uses
# its private open and load steps to stay on the one safe path (format list, pixel
# limit, EXIF orientation, error translation). A ``draft`` argument on
# ``images.decode`` would let this module drop those imports.

_DRAFT_FORMATS = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class DecodedImage:
    """One image ready for the model.

    Attributes:
        pixels: uint8 ``[H, W, 3]`` at the model input size.
        width: Width of the input image, upright, in pixels.
        height: Height of the input image, upright, in pixels.
    """

    pixels: np.ndarray
    width: int
    height: int


@dataclass(frozen=True)
class ModelPixels:
    """The recipe from any image input to model pixels.

    Attributes:
        preprocessing: The dataset version's preprocessing.
        input_size: The model input ``(width, height)``.
        draft: Decode JPEGs at reduced scale (see the module docstring).
    """

    preprocessing: Preprocessing
    input_size: tuple[int, int]
    draft: bool = True

    def from_path(
        self, path: str | Path, *, max_pixels: int | None = None
    ) -> DecodedImage:
        """Reads and prepares an image file.

        Raises:
            UnsupportedImageError: The file cannot be read, or as `from_bytes`.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise UnsupportedImageError(
                f"{path}: cannot be read ({error.strerror})"
            ) from None
        return self.from_bytes(data, name=str(path), max_pixels=max_pixels)

    def from_bytes(
        self, data: bytes, *, name: str = "<bytes>", max_pixels: int | None = None
    ) -> DecodedImage:
        """Decodes and prepares an image file's bytes.

        Raises:
            ImageError: As `pigeonhole.images.decode`.
        """
        image = _open(data, name, max_pixels)
        width, height = image.size
        orientation = _orientation(image)
        if orientation in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        if self.draft and image.format in _DRAFT_FORMATS:
            needed = self._decode_size((width, height))
            if orientation in _TRANSPOSING_ORIENTATIONS:
                needed = (needed[1], needed[0])  # draft works on the stored picture
            image.draft("RGB", needed)
        upright = to_rgb(_load_upright(image, name))
        return DecodedImage(self._finish(upright), width, height)

    def from_image(self, image: Image.Image) -> DecodedImage:
        """Prepares a decoded Pillow image, taken as upright."""
        width, height = image.size
        return DecodedImage(self._finish(to_rgb(image)), width, height)

    def from_array(self, array: np.ndarray, *, name: str = "<array>") -> DecodedImage:
        """Prepares uint8 RGB pixels ``[H, W, 3]``.

        Raises:
            ValidationError: The array is not uint8 ``[H, W, 3]``.
        """
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValidationError(
                f"{name}: array is {array.dtype} with shape {array.shape}; an image "
                "array must be uint8 [height, width, 3] RGB"
            )
        return self.from_image(Image.fromarray(array, "RGB"))

    def _finish(self, image: Image.Image) -> np.ndarray:
        image = self.preprocessing.apply(image)
        if image.size != self.input_size:
            image = Preprocessing(resize=self.input_size).apply(image)
        return np.asarray(image)

    def _decode_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The smallest decoded size the first resize can use without upscaling."""
        target = self.preprocessing.resize
        mode = self.preprocessing.resize_mode
        if target is None:
            target, mode = self.input_size, ResizeMode.STRETCH
        if mode is ResizeMode.STRETCH:
            return target
        ratios = (target[0] / size[0], target[1] / size[1])
        scale = min(ratios) if mode is ResizeMode.FIT else max(ratios)
        return (
            max(1, math.ceil(size[0] * scale)),
            max(1, math.ceil(size[1] * scale)),
        )

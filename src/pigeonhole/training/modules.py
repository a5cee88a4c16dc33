"""The torch modules a model graph is made of: input normalisation, backbone, head.

The exported graph takes uint8 pixels ``[N, H, W, 3]`` exactly as
`pigeonhole.training.inputs.ModelInput.batch` makes them, so normalisation travels
inside the model and serving needs only the resize.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model_input = ModelInput(size=(32, 32))
    >>> classifier = Classifier(nn.Flatten(), nn.Linear(3 * 32 * 32, 4), model_input)
    >>> logits, embedding = classifier(torch.zeros(2, 32, 32, 3, dtype=torch.uint8))
    >>> tuple(logits.shape), tuple(embedding.shape)
    ((2, 4), (2, 3072))
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pigeonhole.training.inputs import ModelInput


class NormalisedInput(nn.Module):
    """Turns uint8 pixels ``[N, H, W, 3]`` into normalised float32 ``[N, 3, h, w]``.

    Only the model input's central crop is kept (``h x w``; all of it without a
    crop): a static slice, so the exported graph crops too.

    The output is a permuted view of the input's memory, so it comes out in
    ``channels_last`` layout, which the backbones' convolutions run fastest on.
    The arithmetic (``pixels * scale - offset``) is the same as
    `ModelInput.normalise`.

    Args:
        model_input: Supplies the per-channel mean and std.
    """

    scale: Tensor
    offset: Tensor

    def __init__(self, model_input: ModelInput) -> None:
        super().__init__()
        scale, offset = model_input.scale_offset()
        self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1))
        self.register_buffer("offset", torch.from_numpy(offset).view(1, 3, 1, 1))
        self.box = model_input.crop_box()
        self.crops = model_input.crop is not None

    def forward(self, images: Tensor) -> Tensor:
        """Crops and normalises a batch of uint8 ``[N, H, W, 3]`` images."""
        left, top, width, height = self.box
        if self.crops:
            images = images[:, top : top + height, left : left + width]
        pixels = images.permute(0, 3, 1, 2).to(torch.float32)
        return pixels * self.scale - self.offset


class Classifier(nn.Module):
    """Normalisation, backbone and head as one module.

    Args:
        backbone: Maps normalised ``[N, 3, H, W]`` images to embeddings ``[N, D]``.
        head: Maps embeddings ``[N, D]`` to logits ``[N, C]``.
        model_input: The input size and normalisation the backbone expects.

    Attributes:
        model_input: As given; recorded so an exporter knows the input size.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, model_input: ModelInput):
        super().__init__()
        self.model_input = model_input
        self.normalise = NormalisedInput(model_input)
        self.backbone = backbone
        self.head = head

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(logits [N, C], embedding [N, D])`` for uint8 ``[N, H, W, 3]``."""
        embedding = self.backbone(self.normalise(images))
        return self.head(embedding), embedding

"""EfficientNet-Lite0 as a torch module whose state dict matches the published weights.

EfficientNet-Lite is the mobile variant of EfficientNet (Tan and Le, 2019): no
squeeze-and-excitation, ReLU6 instead of swish, and a stem and head that are not
scaled. Lite0 has seven stages of inverted-residual (MBConv) blocks, 16 blocks in
all, and ends in a 1280-channel 1x1 convolution, global average pooling and a
1000-class linear layer.

The weights were converted from TensorFlow, so convolutions pad the TensorFlow way
("SAME": when the padding is odd, the extra row and column go at the bottom and
right). Attribute names keep the leading underscores of the weight file's keys
(``_conv_stem``, ``_blocks.0._depthwise_conv``, ...) so the file loads with
``load_state_dict`` and no key mapping.

This module imports torch; import it only where torch is installed.

Example:
    >>> import torch
    >>> model = EfficientNetLite0().eval()
    >>> model(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

EMBEDDING_SIZE = 1280

# TensorFlow's batch-norm defaults for EfficientNet: decay 0.99 is momentum 0.01 here.
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


@dataclass(frozen=True)
class _Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


_LITE0_STAGES = (
    _Stage(1, 3, 1, 1, 32, 16),
    _Stage(2, 3, 2, 6, 16, 24),
    _Stage(2, 5, 2, 6, 24, 40),
    _Stage(3, 3, 2, 6, 40, 80),
    _Stage(3, 5, 1, 6, 80, 112),
    _Stage(4, 5, 2, 6, 112, 192),
    _Stage(1, 3, 1, 6, 192, 320),
)


class SamePadConv2d(nn.Conv2d):
    """A bias-free convolution that pads like TensorFlow's ``padding="SAME"``.

    The output has ``ceil(input / stride)`` rows and columns; when the total padding
    is odd the extra row and column go at the bottom and right.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        *,
        groups: int = 1,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pads ``x`` for "SAME" output size, then convolves."""
        pad_h = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        pad_w = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if pad_h or pad_w:
            x = F.pad(
                x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]
            )
        return super().forward(x)


def _same_padding(size: int, kernel: int, stride: int) -> int:
    out = math.ceil(size / stride)
    return max((out - 1) * stride + kernel - size, 0)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: expand (1x1), depthwise (kxk), project (1x1).

    Args:
        in_channels: Channels coming in.
        out_channels: Channels going out.
        kernel: Side of the depthwise kernel (3 or 5).
        stride: Stride of the depthwise convolution (1 or 2).
        expand: Expansion ratio; 1 means the block has no expansion convolution.
        drop_rate: Probability of dropping the residual branch during training
            (stochastic depth); only used when the block has a skip connection.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int,
        stride: int,
        expand: int,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = in_channels * expand
        self._expand_conv: nn.Module | None = None
        if expand != 1:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = SamePadConv2d(
            hidden, hidden, kernel, stride, groups=hidden
        )
        self._bn1 = _batch_norm(hidden)
        self._project_conv = SamePadConv2d(hidden, out_channels, 1)
        self._bn2 = _batch_norm(out_channels)
        self._skip = stride == 1 and in_channels == out_channels
        self._drop_rate = drop_rate

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Runs the block; adds the input back when shapes allow."""
        x = inputs
        if self._expand_conv is not None:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if not self._skip:
            return x
        if self._drop_rate > 0:
            x = stochastic_depth(x, self._drop_rate, "row", self.training)
        return x + inputs


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for 224x224 RGB input.

    Args:
        num_classes: Outputs of the final linear layer.
        dropout: Dropout before the final linear layer (0.2 in the original recipe).
        drop_connect_rate: Stochastic-depth rate of the last block; earlier blocks
            get proportionally less (0.2 in the original recipe).

    Example:
        >>> model = EfficientNetLite0(num_classes=10)
        >>> model._fc.in_features
        1280
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        dropout: float = 0.2,
        drop_connect_rate: float = 0.2,
    ) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, 2)
        self._bn0 = _batch_norm(32)
        self._blocks = nn.ModuleList(_lite0_blocks(drop_connect_rate))
        self._conv_head = SamePadConv2d(320, EMBEDDING_SIZE, 1)
        self._bn1 = _batch_norm(EMBEDDING_SIZE)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc: nn.Module = nn.Linear(EMBEDDING_SIZE, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the pooled 1280-value embedding of each image in ``x``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(self._avg_pooling(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the class logits (or the embedding if ``_fc`` is an identity)."""
        return self._fc(self._dropout(self.forward_features(x)))


def _lite0_blocks(drop_connect_rate: float) -> list[MBConvBlock]:
    total = sum(stage.repeats for stage in _LITE0_STAGES)
    blocks: list[MBConvBlock] = []
    for stage in _LITE0_STAGES:
        for repeat in range(stage.repeats):
            first = repeat == 0
            blocks.append(
                MBConvBlock(
                    stage.in_channels if first else stage.out_channels,
                    stage.out_channels,
                    kernel=stage.kernel,
                    stride=stage.stride if first else 1,
                    expand=stage.expand,
                    drop_rate=drop_connect_rate * len(blocks) / total,
                )
            )
    return blocks

"""Tests for the model input: the stretch, the central crop and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pigeonhole.errors import ValidationError
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.modules import NormalisedInput


def test_model_input_crops_inside_the_graph() -> None:
    model_input = ModelInput.for_backbone("mobilenet_v2", (64, 48))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 55, 73, 3), np.uint8)

    graph = NormalisedInput(model_input)(torch.from_numpy(pixels)).numpy()

    assert model_input.size == (73, 55) and model_input.crop == (64, 48)
    assert graph.shape == (2, 3, 48, 64)
    np.testing.assert_allclose(graph, model_input.normalise(pixels), atol=1e-5)
    assert ModelInput.from_dict(model_input.to_dict()) == model_input
    with pytest.raises(ValidationError, match="larger than size"):
        ModelInput(size=(32, 32), crop=(40, 32))

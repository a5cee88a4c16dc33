"""A small real classifier, pictures to show it, and its model metadata.

The classifier is MobileNetV2 with random weights, so no weights file is needed; two
steps give it the confident, spread-out outputs of a trained model. Batch-norm
statistics are re-estimated on drawn pictures (with the initial statistics every
activation shrinks towards zero and every picture gets the same embedding), and the
head is fitted by ridge regression on their embeddings. Random features generalise
poorly, so on unseen pictures the answer is often not the drawn class: tests compare
the predictor with the torch model, never with the drawn class.

Pictures are drawn with Pillow: a muted background, a few shapes in the class colour
and one small shape in another colour, all placed by a seed.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from pigeonhole.models.backbones import build_backbone
from pigeonhole.models.metadata import ModelMetadata
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.modules import Classifier

CLASS_NAMES = ("red", "green", "blue")
COLOURS = ((215, 40, 35), (40, 190, 60), (35, 60, 215))
# Not square, so that a swapped width and height cannot pass unnoticed.
MODEL_INPUT = ModelInput(size=(160, 128))
TRAINING_PICTURES = 48


def picture(
    seed: int, class_id: int, size: tuple[int, int] | None = None
) -> Image.Image:
    """A picture of class ``class_id``, 100 to 300 pixels a side unless ``size``."""
    rng = random.Random(seed * 7919 + class_id)
    if size is None:
        size = (rng.randrange(100, 301), rng.randrange(100, 301))
    width, height = size
    background = tuple(rng.randrange(90, 170) for _ in range(3))
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    colour = COLOURS[class_id]
    for _ in range(rng.randrange(3, 6)):
        x, y = rng.randrange(width * 2 // 3), rng.randrange(height * 2 // 3)
        box = (x, y, x + rng.randrange(width // 4, width // 2), y + height // 3)
        jitter = tuple(max(0, min(255, c + rng.randrange(-20, 21))) for c in colour)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=jitter)
        else:
            draw.rectangle(box, fill=jitter)
    other = COLOURS[(class_id + 1) % len(COLOURS)]
    x, y = rng.randrange(width - width // 8), rng.randrange(height - height // 8)
    draw.ellipse((x, y, x + width // 8, y + height // 8), fill=other)
    return image


def encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    """The image as file bytes in ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def build_classifier(seed: int = 0) -> Classifier:
    """A MobileNetV2 classifier with confident answers on these pictures."""
    torch.manual_seed(seed)
    backbone, embedding_size = build_backbone("mobilenet_v2", pretrained=False)
    head = nn.Linear(embedding_size, len(CLASS_NAMES))
    classifier = Classifier(backbone, head, MODEL_INPUT)
    labels = [index % len(CLASS_NAMES) for index in range(TRAINING_PICTURES)]
    pixels = torch.from_numpy(
        MODEL_INPUT.batch(picture(index, label) for index, label in enumerate(labels))
    )
    _estimate_batch_norm(classifier, pixels)
    _fit_head(classifier, head, pixels, torch.tensor(labels))
    return classifier.eval()


def metadata(**changes: Any) -> ModelMetadata:
    """Metadata for a classifier from `build_classifier`, with ``changes`` applied."""
    values: dict[str, Any] = {
        "model_id": "shapes/1",
        "project_slug": "shapes",
        "project_type": "single-label",
        "class_names": list(CLASS_NAMES),
        "backbone": {"name": "mobilenet_v2", "weights_sha256": "", "licence": "none"},
        "input": MODEL_INPUT.to_dict(),
        "preprocessing": Preprocessing().to_dict(),
        "dataset_version": {"id": 1, "manifest_hash": "0" * 64},
        "temperature": 1.5,
        "metrics": {"accuracy": 1.0},
    }
    values.update(changes)
    return ModelMetadata(**values)


def torch_outputs(
    classifier: Classifier, batch: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, embedding)`` of the torch model on uint8 ``[N, H, W, 3]``."""
    with torch.no_grad():
        logits, embedding = classifier(torch.from_numpy(batch))
    return logits.numpy(), embedding.numpy()


def _estimate_batch_norm(classifier: Classifier, pixels: torch.Tensor) -> None:
    for module in classifier.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the batches seen
    classifier.train()
    with torch.no_grad():
        classifier(pixels)
    classifier.eval()


def _fit_head(
    classifier: Classifier, head: nn.Linear, pixels: torch.Tensor, labels: torch.Tensor
) -> None:
    with torch.no_grad():
        _, embedding = classifier(pixels)
        features = torch.cat([embedding, torch.ones(len(embedding), 1)], dim=1)
        targets = nn.functional.one_hot(labels, len(CLASS_NAMES)).float() * 8 - 4
        gram = features.T @ features + 0.1 * torch.eye(features.shape[1])
        weights = torch.linalg.solve(gram, features.T @ targets)
        head.weight.copy_(weights[:-1].T)
        head.bias.copy_(weights[-1])


def write_shapes_package(folder: Path, classifier: Classifier, **changes: Any) -> Any:
    """Exports ``classifier`` as a model package in ``folder`` (which must not exist).

    ``changes`` are applied to the `metadata`. Returns the `ModelPackage`.
    """
    from pigeonhole.models.package import write_package

    parity = MODEL_INPUT.batch(picture(500 + i, i % 3) for i in range(6))
    return write_package(
        folder,
        classifier,
        metadata(**changes),
        input_size=MODEL_INPUT.size,
        ood_reference=None,
        parity_batch=parity,
    )

"""A tiny real model package for server tests: it answers by an image's main colour.

The backbone averages the normalised pixels into a 3-number embedding (mean R, G and
B) and the head scales them, so a red picture is ``red`` with high confidence, a
green one ``green``, and so on. The package is a real ONNX export written by
`write_package`, with its parity check, so the server serves it exactly as it would
serve a trained model; exporting it takes well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import nn

from modelgen import metadata
from pigeonhole.models.package import ModelPackage, write_package
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.storage.database import ModelRow
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.modules import Classifier
from pigeonhole.workspace import Workspace

CLASS_NAMES = ("red", "green", "blue")
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
MODEL_INPUT = ModelInput(size=(32, 32))


def colour_image(name: str, size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A plain picture of the colour of class ``name`` (or grey for ``grey``)."""
    colour = COLOURS.get(name, (128, 128, 128))
    return Image.new("RGB", size, colour)


def _classifier() -> Classifier:
    backbone = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Linear(3, 3)
    nn.init.eye_(head.weight)
    head.weight.data *= 4.0
    nn.init.zeros_(head.bias)
    return Classifier(backbone, head, MODEL_INPUT).eval()


def add_model(
    workspace: Workspace,
    slug: str,
    number: int = 1,
    *,
    multi_label: bool = False,
    **changes: Any,
) -> ModelPackage:
    """Writes the colour model as model ``number`` of project ``slug``.

    The project must exist; the package goes to ``<ws>/models/<slug>/<number>`` and
    gets a row in the ``models`` table, as a training run would leave it.
    """
    project = workspace.project(slug)
    values: dict[str, Any] = {
        "model_id": f"{slug}/{number}",
        "project_slug": slug,
        "project_type": "multi-label" if multi_label else "single-label",
        "class_names": list(CLASS_NAMES),
        "input": MODEL_INPUT.to_dict(),
        "preprocessing": Preprocessing().to_dict(),
        "temperature": 1.0,
        "metrics": {"accuracy": 1.0},
    }
    values.update(changes)
    parity = np.stack(
        [np.asarray(colour_image(name, (32, 32))) for name in CLASS_NAMES]
    )
    folder = workspace.root / "models" / slug / str(number)
    package = write_package(
        folder,
        _classifier(),
        metadata(**values),
        input_size=MODEL_INPUT.size,
        ood_reference=None,
        parity_batch=parity,
    )
    with workspace.sessions.begin() as session:
        session.add(
            ModelRow(
                project_id=project.id,
                number=number,
                version_number=1,
                mode="fast",
                backbone="colour-mean",
                path=str(Path("models") / slug / str(number)),
                metrics={"accuracy": 1.0},
            )
        )
    return package

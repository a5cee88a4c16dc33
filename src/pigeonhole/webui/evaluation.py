"""Read-only helpers of the Evaluate and Train pages: models, backbones, and a
model's test images predicted again.

The model package keeps its test metrics and plots but not what it said about each
image, which the page needs to open a confusion-matrix cell as images and to show the
worst mistakes. These routes run the served model (ONNX Runtime, no torch) over the
test split of the dataset version the model was trained on, and serve the package's
report and plots. They change nothing, and any key, read-only ones included, may call
them.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from pigeonhole.errors import NotFoundError
from pigeonhole.models.package import REPORT_FILE
from pigeonhole.server.deps import READ, ProjectDep

if TYPE_CHECKING:
    from pigeonhole.inference.predictor import Predictor
    from pigeonhole.project import Project

#: Test images predicted per request; a larger test split is cut at this many.
MAX_IMAGES = 2000

#: Predictors kept loaded between requests, least recently used dropped first.
CACHE_SIZE = 2

router = APIRouter(prefix="/ui/api", tags=["web UI"], include_in_schema=False)

_cache: OrderedDict[tuple[str, str], Predictor] = OrderedDict()
_cache_lock = threading.Lock()


@router.get("/backbones", dependencies=[READ])
def backbones() -> list[str]:
    """The names of the registered backbones, the default first."""
    from pigeonhole.models.backbones import list_backbones

    return [spec.name for spec in list_backbones()]


@router.get("/projects/{project}/models", dependencies=[READ])
def models(project: ProjectDep) -> list[dict[str, Any]]:
    """The project's models, newest first, with their headline test metrics."""
    return [
        {
            "number": model.number,
            "model_id": model.model_id,
            "mode": model.mode,
            "backbone": model.backbone,
            "version": model.version,
            "run_id": model.run_id,
            "created_at": model.created_at.isoformat(),
            "metrics": model.metrics,
            "rejection_threshold": model.metadata.rejection_threshold,
            "project_type": model.metadata.project_type.value,
        }
        for model in reversed(project.models())
    ]


@router.get("/projects/{project}/models/{number}/evaluation", dependencies=[READ])
def evaluation(project: ProjectDep, number: int) -> dict[str, Any]:
    """The model's report and, per test image, its labels and the prediction."""
    model = project.model(number)
    report_path = Path(model.path) / REPORT_FILE
    report = (
        json.loads(report_path.read_text(encoding="utf-8"))
        if report_path.exists()
        else {}
    )
    metadata = model.metadata.to_dict()
    images, truncated = _test_predictions(project, model.version, model.path)
    return {
        "model_id": model.model_id,
        "version": model.version,
        "class_names": list(model.metadata.class_names),
        "project_type": metadata.get("project_type"),
        "rejection_threshold": metadata.get("rejection_threshold"),
        "class_thresholds": metadata.get("class_thresholds"),
        "metrics": model.metrics,
        "report": report,
        "images": images,
        "truncated": truncated,
    }


@router.get("/projects/{project}/models/{number}/plots/{name}", dependencies=[READ])
def plot(project: ProjectDep, number: int, name: str) -> FileResponse:
    """One PNG of the package's ``plots`` folder, such as ``reliability.png``."""
    folder = Path(project.model(number).path) / "plots"
    available = sorted(path.name for path in folder.glob("*.png"))
    if name not in available:
        listed = ", ".join(available) or "none"
        raise NotFoundError(f"model {number} has no plot {name!r}; plots: {listed}")
    return FileResponse(folder / name, media_type="image/png")


def _test_predictions(
    project: Project, version_number: int, model_path: Path
) -> tuple[list[dict[str, Any]], bool]:
    items = [item for item in project.version(version_number).items("test")]
    items = [item for item in items if item.copy == 0 and item.labels]
    truncated = len(items) > MAX_IMAGES
    items = items[:MAX_IMAGES]
    if not items:
        return [], False
    image_ids = _image_ids(project, {item.source for item in items})
    blobs = project.workspace.blobs
    predictor = _predictor(project.slug, Path(model_path))
    predictions = predictor.predict([blobs.path(item.source) for item in items])
    rows = []
    for item, prediction in zip(items, predictions, strict=True):
        rows.append(
            {
                "image_id": image_ids.get(item.source),
                "name": item.name,
                "labels": list(item.labels),
                "top": prediction.top,
                "confidence": prediction.confidence,
                "best": prediction.classes[0].name if prediction.classes else None,
                "predicted_classes": prediction.predicted_classes,
                "classes": [
                    {"name": score.name, "confidence": score.confidence}
                    for score in prediction.classes[:3]
                ],
            }
        )
    return rows, truncated


def _image_ids(project: Project, digests: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    offset = 0
    while len(found) < len(digests):
        page = project.images(offset=offset, limit=1000)
        if not page:
            break
        found.update({r.sha256: r.id for r in page if r.sha256 in digests})
        offset += len(page)
    return found


def _predictor(slug: str, path: Path) -> Predictor:
    from pigeonhole.inference.predictor import Predictor

    key = (slug, str(path))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    loaded = Predictor.load(path, urls=None)
    with _cache_lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded

"""Dataset health: the report as JSON and its plots as PNG."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from pigeonhole.errors import NotFoundError
from pigeonhole.server.deps import READ, ProjectDep
from pigeonhole.server.schemas import error_responses

router = APIRouter(tags=["health"], responses=error_responses(401, 404, 422))

PLOTS = ("class_balance", "image_sizes", "label_cooccurrence")

Distance = Annotated[
    int | None,
    Query(
        ge=0,
        le=32,
        description="Largest perceptual-hash distance, in bits, for near-duplicates.",
    ),
]


@router.get("/projects/{project}/health", dependencies=[READ])
def health_report(project: ProjectDep, distance: Distance = None) -> dict[str, Any]:
    """Counts per class and split, imbalance, sizes, duplicates, leakage, conflicts."""
    return project.health(near_duplicate_distance=distance).to_dict()


@router.get(
    "/projects/{project}/health/plots/{name}",
    dependencies=[READ],
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "A PNG."}},
)
def health_plot(project: ProjectDep, name: str, distance: Distance = None) -> Response:
    """One plot: ``class_balance``, ``image_sizes`` or ``label_cooccurrence``."""
    from pigeonhole.datasets.health import write_plots

    stem = name.removesuffix(".png")
    if stem not in PLOTS:
        raise NotFoundError(f"no plot {name!r}; plots: {', '.join(PLOTS)}")
    report = project.health(near_duplicate_distance=distance)
    with tempfile.TemporaryDirectory(dir=project.workspace.scratch) as folder:
        written = {path.stem: path for path in write_plots(report, Path(folder))}
        if stem not in written:
            raise NotFoundError(
                f"project {project.slug!r} has no {stem} plot: image_sizes needs "
                "images and label_cooccurrence a multi-label project"
            )
        data = written[stem].read_bytes()
    return Response(data, media_type="image/png")

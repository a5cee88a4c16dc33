"""Training runs: start, list, progress, cancel and logs.

Starting a run queues it and hands it to the training worker process
(`pigeonhole.server.worker`); the request returns at once with the queued run.
Progress is read from the run's row while the worker writes it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from pigeonhole.errors import NotFoundError
from pigeonhole.server.deps import READ, WRITE, ProjectDep, WorkspaceDep
from pigeonhole.server.schemas import error_responses

router = APIRouter(tags=["training"], responses=error_responses(401, 403, 404, 422))


class RunStart(BaseModel):
    """What to train; every field but ``version`` has `TrainConfig`'s default."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, description="Dataset version; the newest.")
    mode: str = Field("fast", description="`fast` or `fine-tune`.")
    backbone: str = "mobilenet_v2"
    class_weighting: bool = True
    target_precision: float | None = None
    rejection_precision: float = 0.95
    seed: int = 0
    fine_tune: dict[str, Any] = Field(default_factory=dict)


@router.post(
    "/projects/{project}/runs",
    dependencies=[WRITE],
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400),
)
def start_run(body: RunStart, project: ProjectDep, request: Request) -> dict[str, Any]:
    """Queues a training run; the worker process starts it when it is free."""
    from pigeonhole.training.runs import TrainConfig, create_run

    values = body.model_dump(exclude={"version"})
    info = create_run(project, body.version, TrainConfig.from_dict(values))
    request.app.state.worker.submit(info.id)
    return info.to_dict()


@router.get("/projects/{project}/runs", dependencies=[READ])
def list_runs(project: ProjectDep) -> list[dict[str, Any]]:
    """The project's runs, newest first, with status and progress."""
    from pigeonhole.training.runs import list_runs as listed

    return [info.to_dict() for info in listed(project)]


@router.get("/projects/{project}/runs/{run_id}", dependencies=[READ])
def get_run(
    project: ProjectDep, run_id: int, workspace: WorkspaceDep
) -> dict[str, Any]:
    """One run: status, phase, steps done of total, message."""
    return _run(project, run_id, workspace).to_dict()


@router.post("/projects/{project}/runs/{run_id}/cancel", dependencies=[WRITE])
def cancel_run(
    project: ProjectDep, run_id: int, workspace: WorkspaceDep
) -> dict[str, Any]:
    """Cancels a queued run at once, or stops a running one at its next batch."""
    from pigeonhole.training.runs import cancel_run as cancel

    _run(project, run_id, workspace)
    return cancel(workspace, run_id).to_dict()


@router.get("/projects/{project}/runs/{run_id}/logs", dependencies=[READ])
def run_logs(
    project: ProjectDep, run_id: int, workspace: WorkspaceDep
) -> dict[str, Any]:
    """The run's history (a row per epoch or per setting tried) and its message."""
    info = _run(project, run_id, workspace)
    return {
        "id": info.id,
        "status": info.status,
        "phase": info.phase,
        "history": info.history,
        "message": info.message,
    }


def _run(project: ProjectDep, run_id: int, workspace: WorkspaceDep) -> Any:
    from pigeonhole.training.runs import get_run as found

    info = found(workspace, run_id)
    if info.project != project.slug:
        raise NotFoundError(f"project {project.slug!r} has no training run {run_id}")
    return info

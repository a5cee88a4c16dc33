"""Splits: assign train, valid and test; preview the counts; move images by hand."""

from __future__ import annotations

from fastapi import APIRouter

from pigeonhole.server.deps import READ, WRITE, ProjectDep
from pigeonhole.server.schemas import (
    Changed,
    ClassSplitOut,
    SplitAssign,
    SplitRequest,
    SplitSummaryOut,
    error_responses,
)

router = APIRouter(tags=["splits"], responses=error_responses(400, 401, 403, 404, 422))


@router.get("/projects/{project}/split", dependencies=[READ])
def split_counts(project: ProjectDep) -> ClassSplitOut:
    """Images per class and split now, ``unassigned`` included (changes nothing)."""
    table = project.health().class_split.to_dict()
    return ClassSplitOut.model_validate(table)


@router.post("/projects/{project}/split", dependencies=[WRITE])
def split_project(project: ProjectDep, body: SplitRequest) -> SplitSummaryOut:
    """Assigns splits: stratified, seeded, near-duplicates kept in one split.

    Images that already have a split keep it unless ``reassign`` is true.
    """
    summary = project.split(body.split_ratios(), seed=body.seed, reassign=body.reassign)
    return SplitSummaryOut.of(summary)


@router.post("/projects/{project}/split/assign", dependencies=[WRITE])
def assign_split(project: ProjectDep, body: SplitAssign) -> Changed:
    """Moves images to a split by hand (``null`` removes their split)."""
    return Changed(changed=project.set_split(body.image_ids, body.split))

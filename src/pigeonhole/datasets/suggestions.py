"""Suggested labels: what a model said about an image, waiting for a person.

A suggestion belongs to one image and holds the labels a model predicted, its
confidence and the model's id. It never counts as a label: versions and training see
only the labels people gave. A person accepts it (the suggested labels become the
image's labels) or corrects it by labelling the image some other way; either clears
it. Making an image unlabelled again keeps its suggestion.

The server's prediction log makes suggestions when it sends a predicted image back
to its project; other code can make them with `suggest`.

Example:
    >>> suggest(project, image.id, ["ripe"], confidence=0.91, model_id="bananas/3")
    ... # doctest: +SKIP
    >>> project.images(suggested=True)  # doctest: +SKIP
    [ImageRecord(id=12, ..., labels=())]
    >>> accept_suggestions(project, [12])  # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.storage.database import ImageRow, SuggestionRow

if TYPE_CHECKING:
    from pigeonhole.project import Project


@dataclass(frozen=True)
class Suggestion:
    """The labels a model suggested for one image.

    Attributes:
        image_id: The image it is about.
        labels: Suggested class names; empty when the model gave no result.
        confidence: The model's confidence in its top class.
        model_id: The model that made it, such as ``bananas/3``.
        prediction_id: The prediction log entry it came from, if any.
        created_at: When it was made.
    """

    image_id: int
    labels: tuple[str, ...]
    confidence: float
    model_id: str
    prediction_id: int | None
    created_at: datetime


def suggest(
    project: Project,
    image_id: int,
    labels: Iterable[str],
    *,
    confidence: float,
    model_id: str,
    prediction_id: int | None = None,
) -> Suggestion:
    """Records (or replaces) the suggestion of one image of ``project``.

    Raises:
        NotFoundError: The project has no such image.
        ValidationError: A confidence outside 0 to 1.
    """
    if not 0 <= confidence <= 1:
        raise ValidationError(
            f"confidence={confidence} of a suggestion must be from 0 to 1"
        )
    with project.workspace.sessions.begin() as session:
        _check_images(session, project, [image_id])
        row = session.get(SuggestionRow, image_id)
        if row is None:
            row = SuggestionRow(image_id=image_id)
            session.add(row)
        row.labels = list(labels)
        row.confidence = confidence
        row.model_id = model_id
        row.prediction_id = prediction_id
        session.flush()
        return _suggestion(row)


def suggestions_of(
    project: Project, image_ids: Iterable[int] | None = None
) -> dict[int, Suggestion]:
    """The suggestions of ``project``'s images (or of the listed ones), by image id.

    Images without a suggestion are left out.
    """
    query = (
        select(SuggestionRow)
        .join(ImageRow, ImageRow.id == SuggestionRow.image_id)
        .where(ImageRow.project_id == project.id)
    )
    if image_ids is not None:
        query = query.where(SuggestionRow.image_id.in_(list(image_ids)))
    with project.workspace.sessions() as session:
        return {row.image_id: _suggestion(row) for row in session.scalars(query)}


def accept_suggestions(project: Project, image_ids: Iterable[int]) -> int:
    """Gives each listed image its suggested labels and clears the suggestion.

    Listed images without a suggestion are left as they are.

    Returns:
        How many images took their suggestion.

    Raises:
        NotFoundError: A listed image is not in the project.
    """
    ids = list(dict.fromkeys(image_ids))
    with project.workspace.sessions() as session:
        _check_images(session, project, ids)
    found = suggestions_of(project, ids)
    by_labels: dict[tuple[str, ...], list[int]] = {}
    for suggestion in found.values():
        by_labels.setdefault(suggestion.labels, []).append(suggestion.image_id)
    for labels, same in by_labels.items():
        project.set_labels(same, labels)
    with project.workspace.sessions.begin() as session:
        clear_suggestions(session, list(found))
    return len(found)


def clear_suggestions(session: Session, image_ids: list[int]) -> None:
    """Deletes the suggestions of these images, in the caller's transaction."""
    if image_ids:
        session.execute(
            delete(SuggestionRow).where(SuggestionRow.image_id.in_(image_ids))
        )


def _check_images(session: Session, project: Project, ids: list[int]) -> None:
    found = set(
        session.scalars(
            select(ImageRow.id).where(
                ImageRow.project_id == project.id, ImageRow.id.in_(ids)
            )
        )
    )
    missing = sorted(set(ids) - found)
    if missing:
        shown = ", ".join(map(str, missing[:10]))
        raise NotFoundError(f"project {project.slug!r} has no image(s) {shown}")


def _suggestion(row: SuggestionRow) -> Suggestion:
    return Suggestion(
        image_id=row.image_id,
        labels=tuple(row.labels or ()),
        confidence=row.confidence,
        model_id=row.model_id,
        prediction_id=row.prediction_id,
        created_at=row.created_at,
    )

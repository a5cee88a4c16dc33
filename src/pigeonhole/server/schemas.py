"""The JSON shapes of requests and responses, as the OpenAPI docs show them.

Bodies are checked for shape here (types, required fields); the values themselves are
checked by the Python API, which raises the errors the server translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from pigeonhole.datasets.ingest import ImportReport
from pigeonhole.datasets.project_data import SplitSummary
from pigeonhole.datasets.splitting import SplitRatios
from pigeonhole.datasets.suggestions import Suggestion, suggestions_of
from pigeonhole.datasets.versions import DatasetVersion
from pigeonhole.project import ImageRecord, Project

if TYPE_CHECKING:
    from pigeonhole.server.auth import ApiKey

MAX_BATCH = 10_000


# Requests


class ProjectCreate(BaseModel):
    """A new project."""

    name: str = Field(description="Shown to people.", examples=["Bananas"])
    type: str = Field(
        "single-label",
        description="`single-label` or `multi-label`; fixed for the project's life.",
    )
    classes: list[str] = Field(
        default_factory=list, description="Initial class names, in class-id order."
    )
    slug: str | None = Field(None, description="URL-safe id; derived from the name.")


class ClassesAdd(BaseModel):
    """Classes to append; those already there are left as they are."""

    names: list[str] = Field(min_length=1, examples=[["green", "ripe"]])


class LabelsSet(BaseModel):
    """The labels an image should have from now on."""

    labels: list[str] = Field(
        description="Class names (one in a single-label project); unknown ones are "
        "added to the project, an empty list makes the image unlabelled."
    )


class LabelAdd(BaseModel):
    """One label to add (multi-label projects)."""

    label: str


class LabelAction(StrEnum):
    """What a batch does with its labels."""

    SET = "set"
    ADD = "add"
    REMOVE = "remove"


class LabelBatch(BaseModel):
    """The same label change for many images at once."""

    image_ids: list[int] = Field(min_length=1, max_length=MAX_BATCH)
    action: LabelAction = Field(
        LabelAction.SET,
        description="`set` replaces the labels, `add` and `remove` change each "
        "listed label.",
    )
    labels: list[str] = Field(default_factory=list)


class SuggestionsAccept(BaseModel):
    """Images whose suggested labels a person accepts."""

    image_ids: list[int] = Field(min_length=1, max_length=MAX_BATCH)


class KeyCreate(BaseModel):
    """A new API key."""

    name: str = Field(description="Who or what uses it.", examples=["camera gate"])
    read_only: bool = Field(False, description="A key that cannot change data.")


class SplitRequest(BaseModel):
    """How to assign train, valid and test."""

    ratios: str | list[float] = Field(
        "70/20/10",
        description="Train, valid and test shares: `70/20/10` or `[0.8, 0.2, 0]`.",
    )
    seed: int = 0
    reassign: bool = Field(False, description="Also move images that have a split.")

    def split_ratios(self) -> SplitRatios:
        """The ratios as the Python API takes them."""
        if isinstance(self.ratios, str):
            return SplitRatios.parse(self.ratios)
        return SplitRatios.parse("/".join(str(value) for value in self.ratios))


class SplitAssign(BaseModel):
    """Images to move to a split by hand."""

    image_ids: list[int] = Field(min_length=1, max_length=MAX_BATCH)
    split: str | None = Field(description="`train`, `valid`, `test`, or null.")


class VersionCreate(BaseModel):
    """The recipe of a new dataset version."""

    preprocessing: dict[str, Any] = Field(
        default_factory=dict,
        description="As `Preprocessing.to_dict()` writes it, e.g. "
        '`{"resize": [224, 224], "resize_mode": "fit"}`; missing keys take defaults.',
    )
    augmentation: dict[str, Any] = Field(
        default_factory=dict,
        description="As `Augmentation.to_dict()` writes it, e.g. "
        '`{"flip_horizontal": true, "multiplier": 3}`.',
    )
    seed: int = 0


# Responses


class ErrorBody(BaseModel):
    """Every error response."""

    message: str = Field(description="What failed and how to fix it, for people.")
    code: str = Field(description="A stable code, for programs.")


class ServiceHealth(BaseModel):
    """The server is up."""

    status: str
    version: str


class ProjectOut(BaseModel):
    """A project with its classes and counts."""

    id: int
    name: str
    slug: str
    type: str
    classes: list[str]
    images: int
    unlabelled: int
    versions: list[int]

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            id=project.id,
            name=project.name,
            slug=project.slug,
            type=project.type.value,
            classes=project.class_names,
            images=project.count_images(),
            unlabelled=project.count_images(unlabelled=True),
            versions=[version.number for version in project.versions()],
        )


class ClassOut(BaseModel):
    """A class with its position and image count."""

    class_id: int
    name: str
    images: int


class ClassesAdded(BaseModel):
    """The classes a request added, and all of them after it."""

    added: list[str]
    classes: list[str]


class SuggestionOut(BaseModel):
    """The labels a model suggested for an image, until a person accepts them or
    labels the image."""

    labels: list[str] = Field(description="Empty when the model gave no result.")
    confidence: float
    model_id: str
    prediction_id: int | None = Field(description="Its entry in the prediction log.")
    created_at: datetime

    @classmethod
    def of(cls, suggestion: Suggestion) -> SuggestionOut:
        return cls(
            labels=list(suggestion.labels),
            confidence=suggestion.confidence,
            model_id=suggestion.model_id,
            prediction_id=suggestion.prediction_id,
            created_at=suggestion.created_at,
        )


class ImageOut(BaseModel):
    """One image of a project."""

    id: int
    sha256: str
    filename: str
    width: int
    height: int
    split: str | None
    labels: list[str]
    suggestion: SuggestionOut | None = Field(
        None, description="A model's suggested labels, or null."
    )

    @classmethod
    def of(cls, record: ImageRecord, suggestion: Suggestion | None = None) -> ImageOut:
        return cls(
            id=record.id,
            sha256=record.sha256,
            filename=record.filename,
            width=record.width,
            height=record.height,
            split=record.split.value if record.split else None,
            labels=list(record.labels),
            suggestion=SuggestionOut.of(suggestion) if suggestion else None,
        )

    @classmethod
    def many(cls, project: Project, records: Sequence[ImageRecord]) -> list[ImageOut]:
        """The records with their suggestions, read in one query."""
        found = suggestions_of(project, [record.id for record in records])
        return [cls.of(record, found.get(record.id)) for record in records]

    @classmethod
    def read(cls, project: Project, image_id: int) -> ImageOut:
        """One image of ``project`` with its suggestion."""
        return cls.many(project, [project.image(image_id)])[0]


class KeyOut(BaseModel):
    """An API key as listed: everything but the key itself."""

    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    read_only: bool
    created_at: datetime
    revoked_at: datetime | None
    revoked: bool = Field(description="A revoked key opens nothing.")

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls.model_validate(asdict(key) | {"revoked": key.revoked})


class KeyCreated(KeyOut):
    """A new key: the only response that ever holds the key itself."""

    key: str = Field(description="Shown this once; the server keeps only its hash.")


class ImagePage(BaseModel):
    """A page of images and how many match in all."""

    total: int
    offset: int
    limit: int
    images: list[ImageOut]


class Changed(BaseModel):
    """How many images a change touched."""

    changed: int


class DuplicateOut(BaseModel):
    name: str
    duplicate_of: str


class ProblemOut(BaseModel):
    name: str
    reason: str


class ImportReportOut(BaseModel):
    """What an upload or import did, file by file where it matters."""

    source: str
    layout: str
    found: int
    added: int
    unchanged: int
    duplicates: list[DuplicateOut]
    labelled: int
    errors: list[ProblemOut] = Field(description="Refused files, with the reason.")
    classes_added: list[str]
    import_id: int | None

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls.model_validate(asdict(report))


class SplitSummaryOut(BaseModel):
    """What a split did, and the counts after it."""

    ratios: list[float]
    seed: int
    assigned: int
    moved: int
    counts: dict[str, int]
    class_counts: dict[str, dict[str, int]]
    groups: int

    @classmethod
    def of(cls, summary: SplitSummary) -> SplitSummaryOut:
        return cls.model_validate(asdict(summary))


class ClassSplitOut(BaseModel):
    """Images per class and split, as the health report counts them."""

    columns: list[str]
    rows: dict[str, dict[str, int]]
    class_totals: dict[str, int]
    split_totals: dict[str, int]


class VersionOut(BaseModel):
    """A dataset version: recipe and counts (the items are in its manifest)."""

    id: str
    number: int
    manifest_hash: str
    recipe: dict[str, Any]
    counts: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, version: DatasetVersion) -> VersionOut:
        return cls(
            id=version.id,
            number=version.number,
            manifest_hash=version.manifest_hash,
            recipe=version.recipe,
            counts=version.counts,
            created_at=version.created_at,
        )


_ERROR_DESCRIPTIONS = {
    400: "A value the Python API refused, or an image that cannot be used",
    401: "No API key, or an unknown or revoked one",
    403: "A read-only key on a route that changes data",
    404: "No such project, image, class or version",
    409: "A name or slug that is already taken",
    413: "A file or request body over the size limits",
    422: "A request of the wrong shape: missing field, wrong type, bad JSON",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {
        status: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }

"""The workspace: one folder holding a metadata database and a blob store.

Layout on disk::

    <root>/pigeonhole.json   marker: format version, optional database URL
    <root>/pigeonhole.db     SQLite metadata, unless a database URL points elsewhere
    <root>/blobs/            image and version files by sha256
    <root>/tmp/              scratch space for unpacking archives

Example:
    >>> from pigeonhole import Workspace
    >>> workspace = Workspace.init("my-workspace")  # doctest: +SKIP
    >>> project = workspace.create_project(
    ...     "Bananas", type="single-label", classes=["green", "ripe", "overripe"]
    ... )  # doctest: +SKIP
    >>> [p.slug for p in workspace.projects()]  # doctest: +SKIP
    ['bananas']
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pigeonhole.config import Settings, settings
from pigeonhole.domain import ProjectType
from pigeonhole.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    WorkspaceError,
)
from pigeonhole.storage.blobs import BlobStore
from pigeonhole.storage.database import ClassRow, ProjectRow, connect

if TYPE_CHECKING:
    from pigeonhole.project import Project

logger = logging.getLogger(__name__)

MARKER = "pigeonhole.json"
FORMAT_VERSION = 1


class Workspace:
    """An open workspace. Create with :meth:`init`, reopen with :meth:`open`.

    Attributes:
        root: The workspace folder.
        blobs: The content-addressed store of image bytes.
        sessions: Factory of database sessions.
        settings: Settings in force.
    """

    def __init__(self, root: Path, database_url: str, config: Settings) -> None:
        self.root = root
        self.settings = config
        self.database_url = database_url
        self.engine = connect(database_url)
        self.sessions: sessionmaker[Session] = sessionmaker(
            self.engine, expire_on_commit=False
        )
        self.blobs = BlobStore(root / "blobs")

    @classmethod
    def init(cls, root: str | Path, *, database_url: str | None = None) -> Workspace:
        """Creates a workspace at ``root``, or opens the one already there.

        Args:
            root: Folder of the workspace; created when missing.
            database_url: SQLAlchemy URL of the metadata database, for example
                ``postgresql+psycopg://user@host/pigeonhole``; SQLite in the folder
                when omitted.
        """
        root = Path(root).expanduser().resolve()
        marker = root / MARKER
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} is a file; a workspace is a folder")
        if not marker.exists():
            if root.exists() and any(root.iterdir()):
                raise WorkspaceError(
                    f"{root} is a folder with files and no {MARKER}; choose an empty "
                    "or new folder for the workspace"
                )
            root.mkdir(parents=True, exist_ok=True)
            content = {"format_version": FORMAT_VERSION, "database_url": database_url}
            marker.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
            logger.info("created workspace %s", root)
        return cls.open(root, database_url=database_url)

    @classmethod
    def open(cls, root: str | Path, *, database_url: str | None = None) -> Workspace:
        """Opens the workspace at ``root`` and brings its schema up to date.

        Raises:
            WorkspaceError: ``root`` is not a workspace, or a newer Pigeonhole made it.
        """
        root = Path(root).expanduser().resolve()
        marker = root / MARKER
        if not marker.is_file():
            raise WorkspaceError(
                f"{root} is not a Pigeonhole workspace (no {MARKER}); create one with "
                f"`pigeonhole init {root}`"
            )
        content = json.loads(marker.read_text(encoding="utf-8"))
        if content.get("format_version", 0) > FORMAT_VERSION:
            raise WorkspaceError(
                f"{root} was written by a newer Pigeonhole (format "
                f"{content['format_version']}, this one reads {FORMAT_VERSION}); "
                "upgrade Pigeonhole to open it"
            )
        config = settings()
        url = (
            database_url
            or config.database_url
            or content.get("database_url")
            or f"sqlite:///{root / 'pigeonhole.db'}"
        )
        return cls(root, url, config)

    def close(self) -> None:
        """Releases database connections."""
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def scratch(self) -> Path:
        """Folder for temporary files, on the same disk as the blobs."""
        path = self.root / "tmp"
        path.mkdir(exist_ok=True)
        return path

    def create_project(
        self,
        name: str,
        *,
        type: str | ProjectType = ProjectType.SINGLE_LABEL,
        classes: Iterable[str] = (),
        slug: str | None = None,
    ) -> Project:
        """Creates a project.

        Args:
            name: Shown to people.
            type: ``single-label`` or ``multi-label``; fixed for the project's life.
            classes: Initial class names, in order; more can be added later.
            slug: URL-safe identifier; derived from ``name`` when omitted.

        Raises:
            ConflictError: The slug is taken.
            ValidationError: Empty name, bad slug or bad type.
        """
        from pigeonhole.project import Project

        name = name.strip()
        if not name:
            raise ValidationError("a project needs a non-empty name")
        slug = check_slug(slug) if slug else slugify(name)
        project_type = ProjectType.parse(type)
        row = ProjectRow(name=name, slug=slug, type=project_type.value)
        row.classes = [
            ClassRow(name=class_name, position=position)
            for position, class_name in enumerate(_unique_names(classes))
        ]
        try:
            with self.sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise ConflictError(
                f"a project with slug {slug!r} already exists; choose another name "
                "or pass a slug"
            ) from None
        logger.info("created project %s (%s)", slug, project_type.value)
        return Project(self, row.id)

    def projects(self) -> list[Project]:
        """Every project, oldest first."""
        from pigeonhole.project import Project

        with self.sessions() as session:
            ids = session.scalars(select(ProjectRow.id).order_by(ProjectRow.id)).all()
        return [Project(self, project_id) for project_id in ids]

    def project(self, ref: str | int) -> Project:
        """The project with this slug, name or id.

        Raises:
            NotFoundError: No project matches.
        """
        from pigeonhole.project import Project

        with self.sessions() as session:
            row = _find_project(session, ref)
            if row is None:
                slugs = session.scalars(select(ProjectRow.slug)).all()
                known = ", ".join(sorted(slugs)) or "none yet"
                raise NotFoundError(f"no project {ref!r}; projects: {known}")
            return Project(self, row.id)

    def delete_project(self, ref: str | int) -> None:
        """Deletes a project with its images, labels and versions (blobs are kept)."""
        project = self.project(ref)
        with self.sessions.begin() as session:
            row = session.get(ProjectRow, project.id)
            session.delete(row)
        logger.info("deleted project %s", project.slug)


def slugify(name: str) -> str:
    """A URL-safe slug from a name: ``"Bananas (ripe)"`` -> ``"bananas-ripe"``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:100].strip("-")
    return slug or "project"


def check_slug(slug: str) -> str:
    """Returns ``slug`` if it is lower-case letters, digits and single hyphens."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) or len(slug) > 100:
        raise ValidationError(
            f"slug {slug!r} must be lower-case letters and digits joined by single "
            "hyphens, at most 100 characters, such as 'ripe-bananas'"
        )
    return slug


def _find_project(session: Session, ref: str | int) -> ProjectRow | None:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = session.get(ProjectRow, int(ref))
        if row is not None:
            return row
    text = str(ref)
    return session.scalars(
        select(ProjectRow).where((ProjectRow.slug == text) | (ProjectRow.name == text))
    ).first()


def _unique_names(names: Iterable[str]) -> list[str]:
    cleaned = [check_class_name(name) for name in names]
    duplicates = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if duplicates:
        raise ValidationError(f"class names repeat: {', '.join(duplicates)}")
    return cleaned


def check_class_name(name: str) -> str:
    """A class name, stripped; refuses empty names and ``;`` (the CSV separator)."""
    cleaned = name.strip()
    if not cleaned:
        raise ValidationError("a class name cannot be empty")
    if ";" in cleaned or len(cleaned) > 200:
        raise ValidationError(
            f"class name {cleaned!r} must be at most 200 characters without ';' "
            "(';' separates labels in CSV files)"
        )
    return cleaned

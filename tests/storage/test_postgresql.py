"""The metadata database on PostgreSQL: the same workflow gives the same results.

Each test runs on a real PostgreSQL server of its own (``tests/postgres.py``) and
compares what it sees with the same steps on the default SQLite file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import imagegen
from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.datasets.suggestions import accept_suggestions, suggest
from pigeonhole.preprocessing import Preprocessing
from pigeonhole.server.auth import authenticate, create_key, revoke_key
from pigeonhole.server.errors import AuthenticationError
from pigeonhole.storage.database import table_names
from pigeonhole.workspace import Workspace
from postgres import PostgresServer


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    """A class-folder source with a corrupt file, and a Roboflow multi-label one."""
    folders = imagegen.class_folders(tmp_path / "folders").path
    imagegen.write(folders / "cat" / "broken.jpg", imagegen.truncated_jpeg())
    imagegen.write(folders / "dog" / "copy of two.jpg", imagegen.jpeg("dog/two.jpg"))
    multi = imagegen.roboflow_multilabel(tmp_path / "roboflow").path
    return {"folders": folders, "multi": multi}


def workflow(workspace: Workspace, sources: dict[str, Path]) -> dict[str, Any]:
    """Import, label, suggest, split, check and version; returns what came out."""
    pets = workspace.create_project("Pets")
    report = pets.import_path(sources["folders"])
    again = pets.import_path(sources["folders"])
    loose = pets.images(unlabelled=True)[0].id
    suggest(pets, loose, ["fish"], confidence=0.7, model_id="pets/1")
    accept_suggestions(pets, [loose])
    pets.set_labels([pets.images(label="dog")[0].id], ["cat"])
    split = pets.split(seed=3)
    version = pets.create_version(
        Preprocessing(resize=(24, 24)),
        Augmentation(flip_horizontal=True, brightness=0.2, multiplier=2),
        seed=1,
    )
    clothes = workspace.create_project("Clothes", type="multi-label")
    clothes.import_path(sources["multi"])
    clothes.add_label([clothes.images()[0].id], "hat")
    return {
        "report": (report.found, report.added, len(report.duplicates)),
        "errors": sorted(error.name for error in report.errors),
        "again": (again.found, again.added, again.unchanged),
        "pets": [(i.filename, i.labels, i.split) for i in pets.images()],
        "split": split.counts,
        "health": pets.health().to_dict(),
        "manifest_hash": version.manifest_hash,
        "counts": version.counts,
        "clothes": [(i.filename, i.labels, i.split) for i in clothes.images()],
        "cooccurrence": clothes.health().to_dict()["cooccurrence"],
        "projects": [project.slug for project in workspace.projects()],
    }


def test_migrations_make_the_same_tables(
    postgres: PostgresServer, workspace: Workspace, tmp_path: Path
) -> None:
    url = postgres.new_database()

    with Workspace.init(tmp_path / "on-postgres", database_url=url) as on_postgres:
        tables = table_names(on_postgres.engine)
    # Opening again finds the schema up to date.
    with Workspace.open(tmp_path / "on-postgres") as reopened:
        assert reopened.database_url == url

    assert tables == table_names(workspace.engine)
    assert "alembic_version" in tables


def test_the_workflow_gives_the_same_results_on_both(
    postgres: PostgresServer,
    workspace: Workspace,
    tmp_path: Path,
    sources: dict[str, Path],
) -> None:
    url = postgres.new_database()

    with Workspace.init(tmp_path / "on-postgres", database_url=url) as on_postgres:
        assert on_postgres.engine.dialect.name == "postgresql"
        found = workflow(on_postgres, sources)
    expected = workflow(workspace, sources)

    assert found == expected
    assert found["errors"] == ["cat/broken.jpg"]
    assert found["again"][1] == 0
    assert found["report"] == (11, 9, 1)
    assert len(found["clothes"]) == 8
    assert ("loose.png", ("fish",), found["pets"][-1][2]) in found["pets"]


def test_api_keys_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.new_database()

    with Workspace.init(tmp_path / "keys", database_url=url) as workspace:
        key, record = create_key(workspace, "camera", read_only=True)
        found = authenticate(workspace, key)
        revoke_key(workspace, str(record.id))
        with pytest.raises(AuthenticationError, match="was revoked"):
            authenticate(workspace, key)

    assert (found.name, found.read_only) == ("camera", True)

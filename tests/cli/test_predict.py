"""Tests for ``pigeonhole predict`` over a real model package and real files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelgen import build_classifier, encode, picture, write_shapes_package
from pigeonhole.cli.main import cli
from pigeonhole.models.package import ModelPackage


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> ModelPackage:
    folder = tmp_path_factory.mktemp("models") / "shapes-1"
    return write_shapes_package(folder, build_classifier())


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Five good images in nested folders, one corrupt JPEG and one text file."""
    root = tmp_path / "photos"
    (root / "day" / "late").mkdir(parents=True)
    for index in range(3):
        image = picture(7000 + index, index, size=(320, 240))
        (root / "day" / f"{index}.jpg").write_bytes(encode(image, "JPEG"))
    (root / "day" / "late" / "3.png").write_bytes(encode(picture(7003, 0), "PNG"))
    (root / "4.webp").write_bytes(encode(picture(7004, 1), "WEBP"))
    (root / "broken.jpg").write_bytes(encode(picture(7005, 2), "JPEG")[:300])
    (root / "notes.txt").write_text("not an image")
    return root


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner(catch_exceptions=False).invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_folder_prints_a_table_and_reports_the_corrupt_file(
    package: ModelPackage, photos: Path
) -> None:
    result = run("predict", str(package.path), str(photos))

    lines = result.stdout.strip().splitlines()
    assert lines[0].split("\t") == ["source", "top", "confidence", "classes"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert len(rows) == 6  # the text file is not an image file
    broken = rows[str(photos / "broken.jpg")]
    assert broken[1] == "ERROR" and "broken.jpg" in broken[2]
    good = rows[str(photos / "day" / "late" / "3.png")]
    assert good[1] in package.metadata.class_names
    assert 0.0 < float(good[2]) <= 1.0
    assert "Predicted 5 images; 1 could not be read" in result.stderr


def test_json_lines_output(package: ModelPackage, photos: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"

    result = run("predict", str(package.path), str(photos), "-o", str(output))

    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 6 and result.stdout == ""
    by_source = {Path(row["source"]).name: row for row in rows}
    assert by_source["broken.jpg"]["error"] and "top" not in by_source["broken.jpg"]
    first = by_source["0.jpg"]
    assert first["error"] is None and (first["width"], first["height"]) == (320, 240)
    assert first["top"] == first["classes"][0]["name"]
    assert len(first["classes"]) == 3


def test_csv_output_with_top_k_and_confidence(
    package: ModelPackage, photos: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.csv"

    run(
        "predict",
        str(package.path),
        str(photos / "day"),
        "--top-k",
        "1",
        "--confidence",
        "1.0",
        "--batch-size",
        "2",
        "--output",
        str(output),
    )

    with output.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 4
    for row in rows:
        assert row["top"] == "" and row["rejected"] == "True"
        assert row["classes"].count(":") == 1  # top 1 only
        assert row["error"] == ""


def test_json_and_model_id_from_the_workspace(
    package: ModelPackage, photos: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(package.path, workspace / "models" / "shapes" / "1")
    image = photos / "day" / "1.jpg"

    result = run("predict", "shapes/1", str(image), "-w", str(workspace), "--json")
    direct = run("predict", str(package.path), str(image), "--json")

    answers, expected = json.loads(result.stdout), json.loads(direct.stdout)
    assert len(answers) == len(expected) == 1
    assert answers[0]["source"] == str(image)
    for row in (answers[0], expected[0]):
        del row["time_ms"]
    assert answers == expected


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["shapes/9", "x.jpg"], 1, "model 'shapes/9' not found"),
        (["no such model", "x.jpg"], 1, "neither a model folder nor a model id"),
        (["{model}", "{missing}"], 1, "no image could be predicted"),
        (["{model}", "x.jpg", "-o", "out.txt"], 2, "must end in .jsonl"),
    ],
    ids=["unknown-id", "bad-model", "only-missing-files", "bad-output"],
)
def test_failures_exit_with_a_message(
    package: ModelPackage,
    tmp_path: Path,
    arguments: list[str],
    code: int,
    message: str,
) -> None:
    filled = [
        value.format(model=package.path, missing=tmp_path / "gone.jpg")
        for value in arguments
    ]

    result = run("predict", *filled, "-w", str(tmp_path), code=code)

    assert message in result.output

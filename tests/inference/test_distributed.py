"""Batch prediction on a real local Ray cluster: the same answers as on one machine.

Ray starts once for the module, with two CPUs, and stops at its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelgen import encode, picture
from pigeonhole.cli.main import cli
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.inference.batch import predict_stream
from pigeonhole.inference.distributed import RayPlan, predict_on_ray
from pigeonhole.inference.predictor import Predictor
from pigeonhole.models.package import ModelPackage

ray = pytest.importorskip("ray", reason="Ray comes with the dev extra")


# Checked before Ray starts: these run first, while no cluster is up.


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"top_k": 0}, ValidationError, "top_k=0"),
        ({"batch_size": 0}, ValidationError, "batch_size=0"),
    ],
    ids=["top-k", "batch-size"],
)
def test_bad_options_fail_before_ray_starts(
    package: ModelPackage,
    options: dict[str, int],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        predict_on_ray(package.path, ["a.png"], **options)  # type: ignore[arg-type]
    assert not ray.is_initialized()


def test_a_missing_model_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nowhere"):
        predict_on_ray(tmp_path / "nowhere", ["a.png"])


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"actors": 0}, "actors=0"),
        ({"cpus_per_actor": 0}, "cpus_per_actor=0"),
        ({"chunk_size": 0}, "chunk_size=0"),
    ],
    ids=["actors", "cpus", "chunk"],
)
def test_bad_plans_are_refused(plan: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RayPlan(**plan)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    """Twenty images in the three classes, with a corrupt one and a missing one."""
    paths = []
    for index in range(20):
        path = tmp_path / f"photo {index:02d}.png"
        path.write_bytes(encode(picture(8100 + index, index % 3), "PNG"))
        paths.append(str(path))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(encode(picture(8200, 0), "JPEG")[:200])
    paths.insert(5, str(broken))
    paths.insert(11, str(tmp_path / "missing.png"))
    return paths


@pytest.mark.slow
def test_ray_gives_the_answers_of_one_machine_in_order(
    cluster: None, package: ModelPackage, predictor: Predictor, photos: list[str]
) -> None:
    plan = RayPlan(actors=2, chunk_size=4)

    rows = list(predict_on_ray(package.path, photos, plan=plan, top_k=2))
    here = [o.to_dict() for o in predict_stream(predictor, photos, top_k=2)]

    assert [row["source"] for row in rows] == photos
    failed = {row["source"]: row["error"] for row in rows if row["error"]}
    assert set(failed) == {photos[5], photos[11]}
    assert "broken.jpg" in failed[photos[5]]
    for ours, expected in zip(rows, here, strict=True):
        assert ours.get("top") == expected.get("top")
        assert [c["name"] for c in ours.get("classes", [])] == [
            c["name"] for c in expected.get("classes", [])
        ]
        if expected["error"] is None:
            assert np.isclose(ours["confidence"], expected["confidence"], atol=1e-5)
            assert len(ours["classes"]) == 2


@pytest.mark.slow
def test_cli_predicts_on_ray(
    cluster: None, package: ModelPackage, photos: list[str], tmp_path: Path
) -> None:
    output = tmp_path / "rows.jsonl"
    options = ["--ray", "--ray-actors", "2", "--confidence", "1.0", "-o", str(output)]

    result = CliRunner().invoke(cli, ["predict", str(package.path), *photos, *options])

    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert result.exit_code == 0, result.output
    assert [row["source"] for row in rows] == photos
    predicted = [row for row in rows if row["error"] is None]
    assert len(predicted) == 20
    # A confidence of 1 rejects every answer.
    assert all(row["top"] is None and row["rejected"] for row in predicted)
    summary = " ".join(result.stderr.split())
    assert "Predicted 20 images to" in summary
    assert "2 could not be read" in summary

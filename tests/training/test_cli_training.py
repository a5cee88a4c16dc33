"""The training commands end to end: train, evaluate, models, runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from drawn import drawn_project

from pigeonhole.cli.main import cli
from pigeonhole.workspace import Workspace


def run(workspace: Workspace, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [*args, "--workspace", str(workspace.root)])
    assert result.exit_code == code, result.output
    return result


def run_json(workspace: Workspace, *args: str) -> object:
    return json.loads(run(workspace, *args, "--json").stdout)


@pytest.mark.slow
def test_train_then_list_show_compare_evaluate_delete(
    shared_workspace: Workspace,
) -> None:
    drawn_project(shared_workspace, "cli-shapes")

    trained = run_json(shared_workspace, "train", "cli-shapes", "--head", "mlp")

    assert isinstance(trained, dict)
    assert trained["model_id"] == "cli-shapes/1"
    assert trained["metadata"]["training"]["head"]["kind"] == "mlp"
    assert Path(trained["path"], "model.onnx").is_file()
    listed = run_json(shared_workspace, "models", "list", "cli-shapes")
    assert [model["number"] for model in listed] == [1]  # type: ignore[union-attr]
    shown = run(shared_workspace, "models", "show", "cli-shapes", "1").stdout
    assert "rejection threshold" in shown and "red, green, blue" in shown
    compared = run_json(shared_workspace, "models", "compare", "cli-shapes", "1")
    assert compared["accuracy"]["1"] == trained["metrics"]["accuracy"]  # type: ignore[index]
    evaluated = run_json(shared_workspace, "evaluate", "cli-shapes", "1")
    assert evaluated["summary"]["accuracy"] == trained["metrics"]["accuracy"]  # type: ignore[index]
    runs = run_json(shared_workspace, "runs", "list", "cli-shapes")
    assert [entry["status"] for entry in runs] == ["succeeded"]  # type: ignore[union-attr]
    run_id = str(runs[0]["id"])  # type: ignore[index]
    assert (
        "weight_decay="
        in run(shared_workspace, "runs", "show", "cli-shapes", run_id).stdout
    )

    run(shared_workspace, "models", "delete", "cli-shapes", "1", "--yes")

    assert not Path(trained["path"]).exists()
    missing = run(shared_workspace, "models", "show", "cli-shapes", "1", code=1)
    assert "Error: project 'cli-shapes' has no model 1" in missing.output


def test_run_of_another_project_is_not_found(workspace: Workspace) -> None:
    for name in ("one", "two"):
        project = workspace.create_project(name, classes=["a"])
        project.add_image(_png(name), labels=["a"], split="train")
        project.create_version()
    from pigeonhole.training.runs import create_run

    queued = create_run(workspace.project("one"))

    result = run(workspace, "runs", "cancel", "two", str(queued.id), code=1)
    assert f"has no run {queued.id}" in result.output
    cancelled = run_json(workspace, "runs", "cancel", "one", str(queued.id))
    assert cancelled["status"] == "cancelled"  # type: ignore[index]


def test_head_is_refused_with_fine_tune(workspace: Workspace) -> None:
    result = run(
        workspace, "train", "any", "--mode", "fine-tune", "--head", "mlp", code=2
    )

    assert "--head is for --mode fast" in result.output


def _png(seed: str) -> bytes:
    from drawn import small_picture

    return small_picture(sum(map(ord, seed)), 0)

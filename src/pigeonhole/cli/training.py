"""Training commands: train, evaluate, and the ``models`` and ``runs`` groups."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pigeonhole.cli.common import (
    friendly_errors,
    json_option,
    open_workspace,
    print_json,
    progress_bar,
    workspace_option,
)
from pigeonhole.errors import NotFoundError
from pigeonhole.training.runs import MODES, RunInfo, TrainConfig

if TYPE_CHECKING:
    from pigeonhole.evaluation.unknowns import UnknownsReport
    from pigeonhole.progress import Progress
    from pigeonhole.project import Project

project_argument = click.argument("project_ref", metavar="PROJECT")

# Headline metrics shown in listings, in this order, where a model has them.
_HEADLINE = (
    "accuracy",
    "macro_f1",
    "micro_f1",
    "mean_average_precision",
    "ece_after",
    "answered",
)


@click.command("train")
@project_argument
@click.option("--version", "version", type=int, help="Dataset version [newest].")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="fast",
    show_default=True,
    help="fast: a head on cached embeddings; fine-tune: train the backbone too.",
)
@click.option("--backbone", default="mobilenet_v2", show_default=True)
@click.option("--epochs", type=int, help="Fine-tune: most epochs [15].")
@click.option("--image-size", type=int, help="Fine-tune: input side in pixels.")
@click.option(
    "--unfreeze", type=click.Choice(["last", "all"]), help="Fine-tune: which blocks."
)
@click.option("--head", type=click.Choice(["linear", "mlp"]), help="Fast: head kind.")
@click.option(
    "--no-class-weighting", is_flag=True, help="Do not weight rare classes up."
)
@click.option(
    "--target-precision",
    type=float,
    help="Multi-label: per-class thresholds reach this precision [max F1].",
)
@click.option(
    "--rejection-precision",
    type=float,
    default=0.95,
    show_default=True,
    help="Single-label: answer only when this precise on the valid split.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@workspace_option
@json_option
@friendly_errors
def train_command(
    project_ref: str,
    version: int | None,
    mode: str,
    backbone: str,
    epochs: int | None,
    image_size: int | None,
    unfreeze: str | None,
    head: str | None,
    no_class_weighting: bool,
    target_precision: float | None,
    rejection_precision: float,
    seed: int,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Train a model on a dataset version of PROJECT."""
    from pigeonhole.training import RunCancelled
    from pigeonhole.training.runs import train

    settings = {
        "epochs": epochs,
        "image_size": image_size,
        "unfreeze": unfreeze,
        "head": head,
    }
    if mode == "fine-tune" and head is not None:
        raise click.UsageError("--head is for --mode fast")
    config = TrainConfig(
        mode=mode,
        backbone=backbone,
        class_weighting=not no_class_weighting,
        target_precision=target_precision,
        rejection_precision=rejection_precision,
        seed=seed,
        fine_tune={key: value for key, value in settings.items() if value is not None},
    )
    project = open_workspace(workspace_path).project(project_ref)
    try:
        with progress_bar(f"train {mode}") as progress:
            model = train(project, version, config, progress)
    except RunCancelled as cancelled:
        raise click.ClickException(f"the run was cancelled ({cancelled})") from None
    if as_json:
        print_json(model.to_dict())
        return
    click.echo(f"model {model.model_id} ({model.mode}, {model.backbone})")
    click.echo(f"  path: {model.path}")
    click.echo(f"  test: {_headline(model.metrics)}")


@click.command("evaluate")
@project_argument
@click.argument("number", type=int)
@click.option("--version", "version", type=int, help="Dataset version [newest].")
@click.option(
    "--all-images", is_flag=True, help="Every image of the version, not its test split."
)
@click.option(
    "--unknowns",
    "unknown_paths",
    multiple=True,
    help="Folder or file of images of none of the classes (repeatable): measures "
    "how well the model answers 'no result' for them.",
)
@click.option(
    "--unknown-project",
    "unknown_projects",
    multiple=True,
    help="Another project whose images serve as unknowns (repeatable).",
)
@workspace_option
@json_option
@friendly_errors
def evaluate_command(
    project_ref: str,
    number: int,
    version: int | None,
    all_images: bool,
    unknown_paths: tuple[str, ...],
    unknown_projects: tuple[str, ...],
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Evaluate model NUMBER of PROJECT on a dataset version, and optionally on
    images it must not recognise."""
    from pigeonhole.training.registry import evaluate_model

    workspace = open_workspace(workspace_path)
    project = workspace.project(project_ref)
    with progress_bar("evaluate") as progress:
        result = evaluate_model(
            project, number, version, all_images=all_images, progress=progress
        )
        unknowns = None
        if unknown_paths or unknown_projects:
            unknowns = _evaluate_unknowns(
                project, number, version, unknown_paths, unknown_projects, progress
            )
    if as_json:
        extra = {} if unknowns is None else {"unknowns": unknowns.to_dict()}
        print_json(result.to_dict() | extra)
        return
    click.echo(
        f"model {result.model_id} on version {result.version} ({result.split}): "
        f"{_headline(result.scores.summary)}"
    )
    if result.skipped:
        click.echo(f"  skipped {result.skipped} images with classes it does not know")
    if unknowns is not None:
        _echo_unknowns(unknowns)


def _evaluate_unknowns(
    project: Project,
    number: int,
    version: int | None,
    paths: tuple[str, ...],
    projects: tuple[str, ...],
    progress: Progress,
) -> UnknownsReport:
    from pigeonhole.cli.predict import expand_paths
    from pigeonhole.evaluation.unknowns import evaluate_unknowns

    blobs = project.workspace.blobs
    others = [project.workspace.project(ref) for ref in projects]
    # Read lazily: a whole project's images need not sit in memory at once.
    images: Iterable[Any] = itertools.chain(
        expand_paths(paths) if paths else [],
        (blobs.get(image.sha256) for other in others for image in other.images()),
    )
    return evaluate_unknowns(
        project, number, images, version=version, progress=progress
    )


def _echo_unknowns(found: UnknownsReport) -> None:
    scores = ", ".join(f"{name} {value:.3f}" for name, value in found.auroc.items())
    click.echo(
        f"unknowns: {found.unknown} images against {found.known} known test images; "
        f"AUROC {scores}"
    )
    click.echo(
        f"  answered 'no result': {found.unknown_rejected:.1%} of unknowns, "
        f"{found.known_rejected:.1%} of known images"
    )
    for name, reason in found.failed[:5]:
        click.echo(f"  could not read {name}: {reason}", err=True)


@click.group("models")
def models_group() -> None:
    """List, show, compare and delete trained models."""


@models_group.command("list")
@project_argument
@workspace_option
@json_option
@friendly_errors
def models_list(project_ref: str, workspace_path: Path, as_json: bool) -> None:
    """List the models of PROJECT."""
    from pigeonhole.training.registry import list_models

    project = open_workspace(workspace_path).project(project_ref)
    models = list_models(project)
    if as_json:
        print_json([_model_row(model) for model in models])
        return
    if not models:
        click.echo(f"project {project.slug} has no model yet")
    for model in models:
        click.echo(
            f"{model.model_id}  v{model.version}  {model.mode:<9} {model.backbone:<18}"
            f" {_headline(model.metrics)}"
        )


@models_group.command("show")
@project_argument
@click.argument("number", type=int)
@workspace_option
@json_option
@friendly_errors
def models_show(
    project_ref: str, number: int, workspace_path: Path, as_json: bool
) -> None:
    """Show model NUMBER of PROJECT."""
    from pigeonhole.training.registry import get_model

    model = get_model(open_workspace(workspace_path).project(project_ref), number)
    if as_json:
        print_json(model.to_dict())
        return
    metadata = model.metadata
    click.echo(f"model {model.model_id}: {model.mode}, {model.backbone}")
    click.echo(f"  path: {model.path}")
    click.echo(f"  dataset version: {model.version}")
    click.echo(f"  classes: {', '.join(metadata.class_names)}")
    click.echo(f"  temperature: {metadata.temperature:.3f}")
    if metadata.class_thresholds:
        thresholds = ", ".join(f"{value:.2f}" for value in metadata.class_thresholds)
        click.echo(f"  class thresholds: {thresholds}")
    else:
        click.echo(f"  rejection threshold: {metadata.rejection_threshold:.3f}")
    for name, value in model.metrics.items():
        click.echo(f"  {name}: {_number(value)}")


@models_group.command("compare")
@project_argument
@click.argument("numbers", type=int, nargs=-1, required=True)
@workspace_option
@json_option
@friendly_errors
def models_compare(
    project_ref: str, numbers: tuple[int, ...], workspace_path: Path, as_json: bool
) -> None:
    """Compare the test metrics of models NUMBERS of PROJECT side by side."""
    from pigeonhole.training.registry import compare_models

    table = compare_models(open_workspace(workspace_path).project(project_ref), numbers)
    if as_json:
        print_json(
            {name: {str(n): v for n, v in row.items()} for name, row in table.items()}
        )
        return
    click.echo("metric".ljust(24) + "".join(f"{n:>12}" for n in numbers))
    for name, row in table.items():
        cells = "".join(f"{_number(row.get(n)):>12}" for n in numbers)
        click.echo(name.ljust(24) + cells)


@models_group.command("delete")
@project_argument
@click.argument("number", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@workspace_option
@json_option
@friendly_errors
def models_delete(
    project_ref: str, number: int, yes: bool, workspace_path: Path, as_json: bool
) -> None:
    """Delete model NUMBER of PROJECT (its record and its folder)."""
    from pigeonhole.training.registry import delete_model, get_model

    project = open_workspace(workspace_path).project(project_ref)
    model = get_model(project, number)
    if not yes:
        click.confirm(f"delete model {model.model_id} at {model.path}?", abort=True)
    delete_model(project, number)
    if as_json:
        print_json({"deleted": model.model_id})
        return
    click.echo(f"deleted model {model.model_id}")


@click.group("runs")
def runs_group() -> None:
    """List, show and cancel training runs."""


@runs_group.command("list")
@project_argument
@workspace_option
@json_option
@friendly_errors
def runs_list(project_ref: str, workspace_path: Path, as_json: bool) -> None:
    """List the training runs of PROJECT, newest first."""
    from pigeonhole.training.runs import list_runs

    runs = list_runs(open_workspace(workspace_path).project(project_ref))
    if as_json:
        print_json([run.to_dict() for run in runs])
        return
    for run in runs:
        click.echo(_run_line(run))


@runs_group.command("show")
@project_argument
@click.argument("run_id", type=int)
@workspace_option
@json_option
@friendly_errors
def runs_show(
    project_ref: str, run_id: int, workspace_path: Path, as_json: bool
) -> None:
    """Show run RUN_ID of PROJECT with its history."""
    run = _project_run(workspace_path, project_ref, run_id, cancel=False)
    if as_json:
        print_json(run.to_dict())
        return
    click.echo(_run_line(run))
    if run.message:
        click.echo(f"  message: {run.message}")
    for row in run.history:
        click.echo(
            "  " + "  ".join(f"{key}={_number(value)}" for key, value in row.items())
        )


@runs_group.command("cancel")
@project_argument
@click.argument("run_id", type=int)
@workspace_option
@json_option
@friendly_errors
def runs_cancel(
    project_ref: str, run_id: int, workspace_path: Path, as_json: bool
) -> None:
    """Ask run RUN_ID of PROJECT to stop at its next batch."""
    run = _project_run(workspace_path, project_ref, run_id, cancel=True)
    if as_json:
        print_json(run.to_dict())
        return
    click.echo(_run_line(run))


def _project_run(
    workspace_path: Path, project_ref: str, run_id: int, *, cancel: bool
) -> RunInfo:
    from pigeonhole.training.runs import cancel_run, get_run

    workspace = open_workspace(workspace_path)
    project = workspace.project(project_ref)
    run = get_run(workspace, run_id)
    if run.project != project.slug:
        raise NotFoundError(f"project {project.slug!r} has no run {run_id}")
    return cancel_run(workspace, run_id) if cancel else run


def _run_line(run: RunInfo) -> str:
    progress = f"{run.phase} {run.done}/{run.total or '?'}" if run.phase else ""
    model = f" -> model {run.model_number}" if run.model_number is not None else ""
    cancel = " (cancel requested)" if run.cancel_requested and not run.finished else ""
    return (
        f"run {run.id}  v{run.version}  {run.mode:<9} {run.status:<9} "
        f"{progress}{model}{cancel}"
    )


def _model_row(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.to_dict()
    data.pop("metadata")
    return data


def _headline(metrics: dict[str, Any]) -> str:
    parts = [
        f"{name} {_number(metrics[name])}"
        for name in _HEADLINE
        if metrics.get(name) is not None
    ]
    return ", ".join(parts) or "no test metrics"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


training_commands = (train_command, evaluate_command, models_group, runs_group)

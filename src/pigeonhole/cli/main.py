"""``pigeonhole``: workspaces, projects, import, health, split and dataset versions.

Results go to stdout (``--json`` for scripts), progress and errors to stderr. A failed
command prints ``Error: <message>`` and exits 1; a usage error exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pigeonhole import __version__
from pigeonhole.cli.common import (
    configure_logging,
    default_workspace,
    friendly_errors,
    json_option,
    open_workspace,
    print_json,
    progress_bar,
    workspace_option,
)
from pigeonhole.cli.datasets import dataset_commands
from pigeonhole.cli.predict import predict
from pigeonhole.cli.server import serve_demo, server_commands
from pigeonhole.cli.training import training_commands
from pigeonhole.cli.weights import weights_group
from pigeonhole.domain import ProjectType
from pigeonhole.workspace import Workspace

if TYPE_CHECKING:
    from pigeonhole.demo import DemoSummary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pigeonhole")
def cli() -> None:
    """Self-hosted image classification: import, label, split, version, train, serve."""
    configure_logging()


@cli.command()
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), required=False
)
@click.option("--database-url", help="SQLAlchemy URL, e.g. a PostgreSQL database.")
@json_option
@friendly_errors
def init(path: Path | None, database_url: str | None, as_json: bool) -> None:
    """Create a workspace at PATH (default: $PIGEONHOLE_WORKSPACE or
    ./pigeonhole-workspace, where the other commands look)."""
    workspace = Workspace.init(
        path or Path(default_workspace()), database_url=database_url
    )
    if as_json:
        print_json({"workspace": str(workspace.root)})
        return
    click.echo(f"Workspace ready at {workspace.root}")


@cli.group()
def project() -> None:
    """Create, list, show and delete projects."""


@project.command("create")
@click.argument("name")
@click.option(
    "--type",
    "project_type",
    type=click.Choice([member.value for member in ProjectType]),
    default=ProjectType.SINGLE_LABEL.value,
    show_default=True,
    help="Fixed for the project's life.",
)
@click.option("--class", "classes", multiple=True, help="A class name; repeat.")
@click.option("--slug", help="URL-safe id; derived from NAME by default.")
@workspace_option
@json_option
@friendly_errors
def project_create(
    name: str,
    project_type: str,
    classes: tuple[str, ...],
    slug: str | None,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Create a project called NAME."""
    created = open_workspace(workspace_path).create_project(
        name, type=project_type, classes=classes, slug=slug
    )
    if as_json:
        print_json(_project_dict(created))
    else:
        click.echo(f"Created project {created.slug} ({created.type.value})")


@project.command("list")
@workspace_option
@json_option
@friendly_errors
def project_list(workspace_path: Path, as_json: bool) -> None:
    """List the projects of the workspace."""
    projects = open_workspace(workspace_path).projects()
    if as_json:
        print_json([_project_dict(each) for each in projects])
        return
    if not projects:
        click.echo("No projects yet: pigeonhole project create NAME")
    for each in projects:
        click.echo(
            f"{each.slug:<24} {each.type.value:<13} {each.count_images():>7} images  "
            f"{len(each.class_names)} classes"
        )


@project.command("show")
@click.argument("project_ref", metavar="PROJECT")
@workspace_option
@json_option
@friendly_errors
def project_show(project_ref: str, workspace_path: Path, as_json: bool) -> None:
    """Show a project's classes and image counts."""
    found = open_workspace(workspace_path).project(project_ref)
    details = _project_dict(found)
    if as_json:
        print_json(details)
        return
    click.echo(f"{found.name} ({found.slug}), {found.type.value}")
    click.echo(f"images: {details['images']}, unlabelled: {details['unlabelled']}")
    click.echo(f"classes: {', '.join(found.class_names) or 'none yet'}")
    click.echo(f"versions: {details['versions']}")


@project.command("delete")
@click.argument("project_ref", metavar="PROJECT")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@workspace_option
@json_option
@friendly_errors
def project_delete(
    project_ref: str, yes: bool, workspace_path: Path, as_json: bool
) -> None:
    """Delete a project with its images, labels and versions."""
    workspace = open_workspace(workspace_path)
    found = workspace.project(project_ref)
    if not yes:
        click.confirm(f"Delete project {found.slug} and all its labels?", abort=True)
    workspace.delete_project(found.id)
    if as_json:
        print_json({"deleted": found.slug})
        return
    click.echo(f"Deleted project {found.slug}")


@cli.group("class")
def class_group() -> None:
    """List and add classes."""


@class_group.command("add")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("names", nargs=-1, required=True)
@workspace_option
@json_option
@friendly_errors
def class_add(
    project_ref: str, names: tuple[str, ...], workspace_path: Path, as_json: bool
) -> None:
    """Add classes NAMES to PROJECT (existing ones are left as they are)."""
    found = open_workspace(workspace_path).project(project_ref)
    added = found.add_classes(names)
    if as_json:
        print_json({"added": list(added), "classes": found.class_names})
        return
    click.echo(f"Added {len(added)} classes: {', '.join(added) or 'none new'}")


@class_group.command("list")
@click.argument("project_ref", metavar="PROJECT")
@workspace_option
@json_option
@friendly_errors
def class_list(project_ref: str, workspace_path: Path, as_json: bool) -> None:
    """List the classes of PROJECT in class-id order."""
    found = open_workspace(workspace_path).project(project_ref)
    names = found.class_names
    if as_json:
        print_json([{"class_id": i, "name": name} for i, name in enumerate(names)])
        return
    for class_id, name in enumerate(names):
        count = found.count_images(label=name)
        click.echo(f"{class_id:>3}  {name:<30} {count:>7} images")


@cli.command()
@click.argument(
    "path",
    type=click.Path(file_okay=False, path_type=Path),
    default="demo-workspace",
    required=False,
)
@click.option(
    "--source",
    type=click.Path(file_okay=False, path_type=Path),
    default="/usr/share/datasets/fashion-mnist",
    show_default=True,
    help="Folder of the Fashion-MNIST IDX files (Debian's dataset-fashion-mnist).",
)
@click.option(
    "--per-class", type=click.IntRange(10, 6000), default=200, show_default=True
)
@click.option(
    "--train/--no-train",
    "train_model",
    default=True,
    show_default=True,
    help="Train a fast model on the new version.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Then serve the model, predict a test image over HTTP and keep serving.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@json_option
@friendly_errors
def demo(
    path: Path,
    source: Path,
    per_class: int,
    train_model: bool,
    serve: bool,
    port: int,
    as_json: bool,
) -> None:
    """Build a demo workspace at PATH from Fashion-MNIST: import, health check,
    split, dataset version and a trained model; with --serve, serve it and make a
    prediction against it as a client would."""
    from dataclasses import asdict

    from pigeonhole.demo import build_demo

    with progress_bar("demo") as progress:
        summary = build_demo(
            path,
            source=source,
            per_class=per_class,
            train_model=train_model,
            progress=progress,
        )
    if serve and not summary.model:
        raise click.UsageError("--serve needs a trained model; drop --no-train")
    if as_json:
        print_json(asdict(summary))
    else:
        _echo_demo(summary)
    if serve:
        serve_demo(summary, port, stderr=as_json)


def _echo_demo(summary: DemoSummary) -> None:
    click.echo(f"Demo workspace: {summary.workspace}")
    click.echo(f"Images written as class folders: {summary.images_folder}")
    imported = summary.imported
    click.echo(
        f"Imported {imported['added']} new images ({imported['unchanged']} already "
        f"there, {imported['duplicates']} duplicates, {imported['refused']} refused)"
    )
    if summary.health_text:
        click.echo(summary.health_text)
    for plot in summary.health_plots:
        click.echo(f"plot: {plot}")
    counts = summary.split["counts"]
    click.echo(
        f"Split: train {counts['train']}, valid {counts['valid']}, "
        f"test {counts['test']}"
    )
    click.echo(
        f"Dataset version {summary.version['id']}: manifest "
        f"{summary.version['manifest_hash'][:16]}, files {summary.version['files']}"
    )
    if summary.model:
        _echo_demo_model(summary.workspace, summary.model)


def _echo_demo_model(workspace: Path, model: dict[str, Any]) -> None:
    metrics = model["metrics"]
    accuracy = metrics.get("accuracy")
    scored = f", test accuracy {accuracy:.3f}" if accuracy is not None else ""
    click.echo(f"Model {model['model_id']}{scored}: {model['path']}")
    click.echo("Next:")
    click.echo(
        f"  pigeonhole predict -w {workspace} {model['model_id']} "
        f"{workspace}-images/sneaker"
    )
    click.echo(f"  pigeonhole serve -w {workspace}   # web UI and API on port 8000")


def _project_dict(found: object) -> dict[str, object]:
    from pigeonhole.project import Project

    assert isinstance(found, Project)
    return {
        "id": found.id,
        "name": found.name,
        "slug": found.slug,
        "type": found.type.value,
        "classes": found.class_names,
        "images": found.count_images(),
        "unlabelled": found.count_images(unlabelled=True),
        "versions": [version.number for version in found.versions()],
    }


for command in [*dataset_commands, *server_commands, *training_commands]:
    cli.add_command(command)
cli.add_command(weights_group)
cli.add_command(predict)


def main() -> None:
    """Entry point of the ``pigeonhole`` script."""
    cli(prog_name="pigeonhole")


__all__ = ["cli", "main", "progress_bar"]

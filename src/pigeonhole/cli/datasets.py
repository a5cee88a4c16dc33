"""Dataset commands: import, add, images, label, health, split, version."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from pigeonhole.cli.common import (
    friendly_errors,
    json_option,
    open_workspace,
    print_json,
    progress_bar,
    stderr,
    workspace_option,
)
from pigeonhole.datasets.augmentation import Augmentation
from pigeonhole.datasets.export import FORMATS
from pigeonhole.datasets.splitting import SplitRatios
from pigeonhole.domain import Split
from pigeonhole.preprocessing import Preprocessing, ResizeMode
from pigeonhole.project import ImageRecord

project_argument = click.argument("project_ref", metavar="PROJECT")
SPLIT_CHOICE = click.Choice(["train", "valid", "val", "test"])


@click.command("import")
@project_argument
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--resplit",
    is_flag=True,
    help="Ignore the splits the source carries; assign them later with `split`.",
)
@workspace_option
@json_option
@friendly_errors
def import_command(
    project_ref: str, path: Path, resplit: bool, workspace_path: Path, as_json: bool
) -> None:
    """Import PATH (class folders, Roboflow export, CSV, images or a .zip)."""
    found = open_workspace(workspace_path).project(project_ref)
    with progress_bar("import") as progress:
        result = found.import_path(path, resplit=resplit, progress=progress)
    if as_json:
        print_json(result.to_dict())
        return
    click.echo(f"{result.layout}: {result.summary()}")
    if result.classes_added:
        click.echo(f"new classes: {', '.join(result.classes_added)}")
    for duplicate in result.duplicates[:20]:
        click.echo(f"  duplicate: {duplicate.name} = {duplicate.duplicate_of}")
    _more(len(result.duplicates), 20, "duplicates")
    for problem in result.errors[:50]:
        stderr.print(f"  refused: {problem.name}: {problem.reason}", highlight=False)
    _more(len(result.errors), 50, "refused files (see --json)")


@click.command("add")
@project_argument
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--label", "labels", multiple=True, help="Class name; repeat.")
@click.option("--split", type=SPLIT_CHOICE, help="Put the images in this split.")
@workspace_option
@json_option
@friendly_errors
def add_command(
    project_ref: str,
    files: tuple[Path, ...],
    labels: tuple[str, ...],
    split: str | None,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Add single images FILES, with labels or unlabelled."""
    found = open_workspace(workspace_path).project(project_ref)
    records = [found.add_image(file, labels=labels, split=split) for file in files]
    if as_json:
        print_json([_image_dict(record) for record in records])
        return
    for record in records:
        click.echo(f"{record.id:>7}  {record.filename}  {', '.join(record.labels)}")


@click.command("images")
@project_argument
@click.option("--split", type=SPLIT_CHOICE)
@click.option("--label", help="Only images with this class.")
@click.option("--unlabelled", is_flag=True, help="Only images with no label.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0)
@workspace_option
@json_option
@friendly_errors
def images_command(
    project_ref: str,
    split: str | None,
    label: str | None,
    unlabelled: bool,
    limit: int,
    offset: int,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """List images of PROJECT with their split and labels."""
    found = open_workspace(workspace_path).project(project_ref)
    records = found.images(
        split=split, label=label, unlabelled=unlabelled, offset=offset, limit=limit
    )
    if as_json:
        print_json([_image_dict(record) for record in records])
        return
    for record in records:
        split_name = record.split.value if record.split else "-"
        click.echo(
            f"{record.id:>7}  {split_name:<5}  {record.width}x{record.height:<6} "
            f"{record.filename}  [{', '.join(record.labels)}]"
        )


@click.command("label")
@project_argument
@click.argument("image_ids", nargs=-1, type=int, required=True)
@click.option("--set", "set_labels", multiple=True, help="Replace labels; repeat.")
@click.option("--add", "add_label", help="Add one label (multi-label).")
@click.option("--remove", "remove_label", help="Remove one label.")
@click.option("--clear", is_flag=True, help="Make the images unlabelled.")
@click.option("--split", type=SPLIT_CHOICE, help="Move the images to this split.")
@workspace_option
@json_option
@friendly_errors
def label_command(
    project_ref: str,
    image_ids: tuple[int, ...],
    set_labels: tuple[str, ...],
    add_label: str | None,
    remove_label: str | None,
    clear: bool,
    split: str | None,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Change the labels (or split) of images IMAGE_IDS."""
    found = open_workspace(workspace_path).project(project_ref)
    if not (set_labels or add_label or remove_label or clear or split):
        raise click.UsageError("give --set, --add, --remove, --clear or --split")
    changed: dict[str, int] = {}
    if set_labels or clear:
        changed["labelled"] = found.set_labels(image_ids, set_labels)
    if add_label:
        changed["added"] = found.add_label(image_ids, add_label)
    if remove_label:
        changed["removed"] = found.remove_label(image_ids, remove_label)
    if split:
        changed["moved"] = found.set_split(image_ids, split)
    if as_json:
        print_json(changed)
        return
    if "labelled" in changed:
        labels = ", ".join(set_labels) or "none"
        click.echo(f"Labelled {changed['labelled']} images: {labels}")
    if "added" in changed:
        click.echo(f"Added {add_label} to {changed['added']} images")
    if "removed" in changed:
        click.echo(f"Removed {remove_label} from {changed['removed']} images")
    if "moved" in changed:
        click.echo(f"Moved {changed['moved']} images to {split}")


@click.command("health")
@project_argument
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write class balance and size plots (PNG) into this folder.",
)
@click.option(
    "--distance",
    type=click.IntRange(0, 32),
    help="Largest perceptual-hash distance for near-duplicates (default 4).",
)
@workspace_option
@json_option
@friendly_errors
def health_command(
    project_ref: str,
    plots: Path | None,
    distance: int | None,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Health check: balance, sizes, duplicates, leakage, conflicts."""
    from pigeonhole.datasets.health import render_text, write_plots

    found = open_workspace(workspace_path).project(project_ref)
    report = found.health(near_duplicate_distance=distance)
    written = write_plots(report, plots) if plots else []
    if as_json:
        print_json(report.to_dict() | {"plots": [str(path) for path in written]})
        return
    click.echo(render_text(report))
    for path in written:
        click.echo(f"plot: {path}")


@click.command("split")
@project_argument
@click.option(
    "--ratios",
    default="70/20/10",
    show_default=True,
    help="train/valid/test shares, e.g. 80/10/10 or 0.8,0.2,0.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--reassign", is_flag=True, help="Also move images that already have a split."
)
@workspace_option
@json_option
@friendly_errors
def split_command(
    project_ref: str,
    ratios: str,
    seed: int,
    reassign: bool,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Assign train/valid/test: stratified, seeded, near-duplicates kept together."""
    found = open_workspace(workspace_path).project(project_ref)
    summary = found.split(SplitRatios.parse(ratios), seed=seed, reassign=reassign)
    if as_json:
        print_json(summary.to_dict())
        return
    click.echo(
        f"{summary.assigned} images assigned, {summary.moved} moved; "
        f"{summary.groups} near-duplicate groups kept whole"
    )
    click.echo(_split_table(summary.counts, summary.class_counts))


@click.group("version")
def version_group() -> None:
    """Create, list, show and export dataset versions."""


@version_group.command("create")
@project_argument
@click.option("--resize", help="WIDTHxHEIGHT (or one number for a square).")
@click.option(
    "--resize-mode",
    type=click.Choice([mode.value for mode in ResizeMode]),
    default=ResizeMode.STRETCH.value,
    show_default=True,
)
@click.option("--grayscale", is_flag=True)
@click.option(
    "--augment",
    default="",
    help="Training augmentation, e.g. flip-h,rot90,rotation=15,brightness=0.2,"
    "exposure=0.1,crop=0.2,blur=1,noise=0.02,hue=15,saturation=0.3",
)
@click.option(
    "--multiplier",
    type=click.IntRange(1, 50),
    default=1,
    show_default=True,
    help="Images written per training image (the original included).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@workspace_option
@json_option
@friendly_errors
def version_create(
    project_ref: str,
    resize: str | None,
    resize_mode: str,
    grayscale: bool,
    augment: str,
    multiplier: int,
    seed: int,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Freeze images, labels, splits, preprocessing and augmentation as a version."""
    found = open_workspace(workspace_path).project(project_ref)
    preprocessing = Preprocessing(
        resize=Preprocessing.parse_size(resize) if resize else None,
        resize_mode=ResizeMode(resize_mode),
        grayscale=grayscale,
    )
    augmentation = Augmentation.parse(augment, multiplier=multiplier)
    with progress_bar("version") as progress:
        version = found.create_version(
            preprocessing, augmentation, seed=seed, progress=progress
        )
    if as_json:
        print_json(_version_dict(version))
        return
    click.echo(f"Created version {version.id} (manifest {version.manifest_hash[:16]})")
    click.echo(_split_table(version.counts["files"], version.counts["classes"]))


@version_group.command("list")
@project_argument
@workspace_option
@json_option
@friendly_errors
def version_list(project_ref: str, workspace_path: Path, as_json: bool) -> None:
    """List the versions of PROJECT."""
    versions = open_workspace(workspace_path).project(project_ref).versions()
    if as_json:
        print_json([_version_dict(version) for version in versions])
        return
    if not versions:
        click.echo("No versions yet: pigeonhole version create PROJECT")
    for version in versions:
        files = version.counts["files"]
        click.echo(
            f"{version.number:>4}  {version.created_at:%Y-%m-%d %H:%M}  "
            f"{version.manifest_hash[:16]}  train {files['train']}, "
            f"valid {files['valid']}, test {files['test']}"
        )


@version_group.command("show")
@project_argument
@click.argument("number", type=int, required=False)
@workspace_option
@json_option
@friendly_errors
def version_show(
    project_ref: str, number: int | None, workspace_path: Path, as_json: bool
) -> None:
    """Show version NUMBER (the newest by default): recipe and counts."""
    version = open_workspace(workspace_path).project(project_ref).version(number)
    details = _version_dict(version)
    if as_json:
        print_json(details)
        return
    click.echo(f"version {version.id}, manifest {version.manifest_hash}")
    click.echo(f"preprocessing: {version.recipe['preprocessing']}")
    click.echo(f"augmentation: {version.recipe['augmentation']}")
    click.echo(_split_table(version.counts["files"], version.counts["classes"]))


@version_group.command("export")
@project_argument
@click.argument("number", type=int)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "export_format",
    type=click.Choice(FORMATS),
    default="folders",
    show_default=True,
)
@workspace_option
@json_option
@friendly_errors
def version_export(
    project_ref: str,
    number: int,
    folder: Path,
    export_format: str,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Write version NUMBER of PROJECT into FOLDER."""
    version = open_workspace(workspace_path).project(project_ref).version(number)
    written = version.export(folder, format=export_format)
    if as_json:
        print_json(
            {"version": version.id, "folder": str(written), "format": export_format}
        )
        return
    click.echo(f"Exported {version.id} to {folder} ({export_format})")


def _split_table(counts: dict[str, int], classes: dict[str, dict[str, int]]) -> str:
    width = max([len(name) for name in classes] + [5])
    names = [split.value for split in Split]
    lines = [f"{'class':<{width}}  " + "  ".join(f"{n:>6}" for n in names)]
    for name, per_split in classes.items():
        cells = "  ".join(f"{per_split.get(n, 0):>6}" for n in names)
        lines.append(f"{name:<{width}}  {cells}")
    lines.append(
        f"{'all':<{width}}  " + "  ".join(f"{counts.get(n, 0):>6}" for n in names)
    )
    return "\n".join(lines)


def _more(count: int, shown: int, what: str) -> None:
    if count > shown:
        click.echo(f"  ... and {count - shown} more {what}")


def _image_dict(record: ImageRecord) -> dict[str, object]:
    return asdict(record)


def _version_dict(version: object) -> dict[str, object]:
    from pigeonhole.datasets.versions import DatasetVersion

    assert isinstance(version, DatasetVersion)
    return {
        "id": version.id,
        "number": version.number,
        "manifest_hash": version.manifest_hash,
        "recipe": version.recipe,
        "counts": version.counts,
        "created_at": version.created_at.isoformat(),
    }


dataset_commands = [
    import_command,
    add_command,
    images_command,
    label_command,
    health_command,
    split_command,
    version_group,
]

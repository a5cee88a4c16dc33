"""``pigeonhole weights``: list backbones and fetch their pretrained weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from pigeonhole.cli.common import friendly_errors, json_option, print_json, progress_bar
from pigeonhole.models.weights import ProgressCallback


@click.group("weights")
def weights_group() -> None:
    """List backbones and fetch their pretrained weights."""


@weights_group.command("list")
@json_option
@friendly_errors
def weights_list(as_json: bool) -> None:
    """List the backbones with their licence and whether the weights are here."""
    from pigeonhole.models.backbones import list_backbones
    from pigeonhole.models.weights import weights_dir, weights_status

    rows = [
        {
            "name": spec.name,
            "embedding_size": spec.embedding_size,
            "input_size": spec.input_size,
            "licence": spec.licence,
            "file": spec.weights.file_name,
            "sha256": spec.weights.sha256,
            "status": str(weights_status(spec.name)),
            "registry_package": spec.weights.registry.requirement,
        }
        for spec in list_backbones()
    ]
    if as_json:
        print_json(rows)
        return
    click.echo(f"weights folder: {weights_dir()}")
    for row in rows:
        click.echo(
            f"{row['name']:<20} {row['status']:<8} dim {row['embedding_size']:<5} "
            f"{row['licence']:<12} {row['file']}"
        )


@weights_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(["url", "registry"]),
    help="Where to look, in order (default: the canonical URL, then the registry).",
)
@click.option("--force", is_flag=True, help="Replace a cached file that is corrupt.")
@json_option
@friendly_errors
def weights_fetch(
    names: tuple[str, ...], sources: tuple[str, ...], force: bool, as_json: bool
) -> None:
    """Fetch and verify the weights of NAMES (default: every backbone)."""
    from pigeonhole.models.backbones import list_backbones
    from pigeonhole.models.weights import fetch_weights

    wanted = names or tuple(spec.name for spec in list_backbones())
    fetched: dict[str, str] = {}
    for name in wanted:
        with _bytes_bar(name) as progress:
            path = fetch_weights(
                name,
                sources=sources or ("url", "registry"),
                progress=progress,
                force=force,
            )
        fetched[name] = str(path)
        if not as_json:
            click.echo(f"{name}: {path}")
    if as_json:
        print_json(fetched)


@contextmanager
def _bytes_bar(name: str) -> Iterator[ProgressCallback]:
    with progress_bar(name) as progress:

        def update(done: int, total: int | None) -> None:
            progress("download", done, total)

        yield update

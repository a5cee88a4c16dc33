"""``pigeonhole predict``: predict files, folders and URLs with a model.

Results go to stdout as a table (or ``--json``), or to a JSON lines or CSV file
with ``--output``; the progress bar and the summary go to stderr. An image that
cannot be read is reported on its own row and the others are still predicted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import click

from pigeonhole.cli.common import (
    friendly_errors,
    json_option,
    print_json,
    stderr,
    workspace_option,
)
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.images import IMAGE_SUFFIXES

_MODEL_ID = re.compile(r"^([a-z0-9][a-z0-9-]*)/([1-9][0-9]*)$")
_CSV_FIELDS = (
    "source",
    "top",
    "confidence",
    "rejected",
    "predicted_classes",
    "classes",
    "ood_score",
    "width",
    "height",
    "time_ms",
    "error",
)


@click.command("predict")
@click.argument("model")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one row per image to FILE.jsonl (JSON lines) or FILE.csv.",
)
@click.option(
    "--top-k", type=click.IntRange(min=1), help="Show this many best classes."
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0),
    help="Threshold that replaces the model's own (0 to 1).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Images per call to the model.",
)
@click.option(
    "--allow-private-urls",
    is_flag=True,
    help="Also fetch URLs on loopback and private networks.",
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Spread the images over a Ray cluster (pip install 'pigeonhole[ray]'); "
    "every machine must see MODEL and PATHS at the same paths.",
)
@click.option(
    "--ray-address",
    help="With --ray: the cluster (auto, ray://host:10001); a local one if not given.",
)
@click.option(
    "--ray-actors",
    type=click.IntRange(min=1),
    help="With --ray: actors holding the model; one per CPU of the cluster if not "
    "given.",
)
@workspace_option
@json_option
@friendly_errors
def predict(
    model: str,
    paths: tuple[str, ...],
    output: Path | None,
    top_k: int | None,
    confidence: float | None,
    batch_size: int,
    allow_private_urls: bool,
    use_ray: bool,
    ray_address: str | None,
    ray_actors: int | None,
    workspace_path: Path,
    as_json: bool,
) -> None:
    """Predict the images at PATHS (files, folders searched recursively, and
    http(s) URLs) with MODEL, a model folder or a model id '<project-slug>/<n>'
    of the workspace.

    \b
    Example:
        pigeonhole predict bananas/3 photos/ https://example.com/cat.jpg
        pigeonhole predict models/bananas/3 photos/ -o predictions.csv
        pigeonhole predict bananas/3 /shared/photos/ --ray --ray-address auto
    """
    writer_kind = _output_kind(output)
    folder = resolve_model(model, workspace_path)
    sources = expand_paths(paths)
    if use_ray:
        from pigeonhole.inference.distributed import RayPlan, predict_on_ray

        found = predict_on_ray(
            folder,
            sources,
            plan=RayPlan(actors=ray_actors, address=ray_address),
            batch_size=batch_size,
            top_k=top_k,
            confidence=confidence,
            allow_private_urls=allow_private_urls,
        )
    else:
        found = _predict_here(
            folder, sources, batch_size, top_k, confidence, allow_private_urls
        )
    with ExitStack() as stack:
        stream = None
        if output is not None:
            stream = stack.enter_context(output.open("w", encoding="utf-8", newline=""))
        rows = _with_progress(
            found,
            total=len(sources),
            show=len(sources) > 1,
        )
        counts = _write(rows, stream, writer_kind, as_json)
    _summarise(counts, output)
    if counts["predicted"] == 0:
        raise click.ClickException("no image could be predicted; see the errors above")


def _predict_here(
    folder: Path,
    sources: list[str],
    batch_size: int,
    top_k: int | None,
    confidence: float | None,
    allow_private_urls: bool,
) -> Iterator[dict[str, Any]]:
    """Rows of `predict_stream` on this machine."""
    from pigeonhole.inference.batch import predict_stream
    from pigeonhole.inference.fetch import UrlLimits
    from pigeonhole.inference.predictor import Predictor

    predictor = Predictor.load(folder, urls=UrlLimits(allow_private=allow_private_urls))
    outcomes = predict_stream(
        predictor, sources, batch_size=batch_size, top_k=top_k, confidence=confidence
    )
    return (outcome.to_dict() for outcome in outcomes)


def resolve_model(model: str, workspace_path: Path) -> Path:
    """The package folder MODEL names: a folder, or ``<slug>/<n>`` in the workspace.

    Raises:
        NotFoundError: Neither a folder nor a model id with a package folder.
    """
    given = Path(model).expanduser()
    if given.is_dir():
        return given
    match = _MODEL_ID.match(model.strip())
    if match is None:
        raise NotFoundError(
            f"model {model!r} is neither a model folder nor a model id "
            "'<project-slug>/<n>' such as 'bananas/3'"
        )
    folder = workspace_path.expanduser() / "models" / match[1] / match[2]
    if not folder.is_dir():
        raise NotFoundError(
            f"model {model!r} not found: {folder} does not exist; "
            "`pigeonhole models list` shows the trained models"
        )
    return folder


def expand_paths(paths: tuple[str, ...]) -> list[str]:
    """URLs as given, files as given, folders as their image files (recursively).

    A path that does not exist is kept, so that its row reports it.
    """
    sources: list[str] = []
    for raw in paths:
        if "://" in raw[:16]:
            sources.append(raw)
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                item
                for item in path.rglob("*")
                if item.suffix.lower() in IMAGE_SUFFIXES and item.is_file()
            )
            sources.extend(str(item) for item in found)
        else:
            sources.append(raw)
    if not sources:
        raise ValidationError(
            f"no images found in {', '.join(paths)}; give image files, folders "
            f"holding {', '.join(sorted(IMAGE_SUFFIXES))} files, or URLs"
        )
    return sources


def _output_kind(output: Path | None) -> str | None:
    if output is None:
        return None
    suffix = output.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise click.UsageError(
        f"--output {str(output)!r} must end in .jsonl (JSON lines) or .csv"
    )


def _with_progress(
    rows: Iterator[dict[str, Any]], *, total: int, show: bool
) -> Iterator[dict[str, Any]]:
    if not show:
        yield from rows
        return
    from rich.progress import Progress

    with Progress(console=stderr, transient=False) as bar:
        task = bar.add_task("predict", total=total)
        for row in rows:
            bar.advance(task)
            yield row


def _write(
    rows: Iterator[dict[str, Any]],
    stream: IO[str] | None,
    kind: str | None,
    as_json: bool,
) -> dict[str, int]:
    counts = {"predicted": 0, "failed": 0}
    collected: list[dict[str, Any]] = []
    csv_writer = None
    if stream is not None and kind == "csv":
        csv_writer = csv.DictWriter(stream, fieldnames=_CSV_FIELDS)
        csv_writer.writeheader()
    if stream is None and not as_json:
        click.echo("source\ttop\tconfidence\tclasses")
    for row in rows:
        counts["failed" if row["error"] else "predicted"] += 1
        if csv_writer is not None:
            csv_writer.writerow(_csv_row(row))
        elif stream is not None:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif as_json:
            collected.append(row)
        else:
            _echo_row(row)
    if as_json and stream is None:
        print_json(collected)
    return counts


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {name: row.get(name) for name in _CSV_FIELDS}
    if row.get("classes") is not None:
        flat["classes"] = ";".join(
            f"{score['name']}:{score['confidence']:.6f}" for score in row["classes"]
        )
        flat["predicted_classes"] = ";".join(row["predicted_classes"])
    return {name: "" if value is None else value for name, value in flat.items()}


def _echo_row(row: dict[str, Any]) -> None:
    if row["error"]:
        click.echo(f"{row['source']}\tERROR\t{row['error']}")
        return
    answer = row["top"] if row["top"] is not None else "(no result)"
    ranked = ", ".join(
        f"{score['name']} {score['confidence']:.3f}" for score in row["classes"]
    )
    click.echo(f"{row['source']}\t{answer}\t{row['confidence']:.3f}\t{ranked}")


def _summarise(counts: dict[str, int], output: Path | None) -> None:
    where = f" to {output}" if output is not None else ""
    message = f"Predicted {counts['predicted']} images{where}"
    if counts["failed"]:
        message += f"; {counts['failed']} could not be read (see their rows)"
    stderr.print(message, highlight=False, markup=False)

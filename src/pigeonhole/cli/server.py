"""``pigeonhole serve`` and ``pigeonhole keys``: the HTTP server and its API keys."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pigeonhole.cli.common import (
    friendly_errors,
    json_option,
    open_workspace,
    print_json,
    workspace_option,
)

logger = logging.getLogger(__name__)

#: Name of the API key the demo creates for its own prediction.
DEMO_KEY = "demo"

if TYPE_CHECKING:
    import uvicorn

    from pigeonhole.demo import DemoSummary
    from pigeonhole.server import ServerSettings
    from pigeonhole.server.auth import ApiKey
    from pigeonhole.workspace import Workspace


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve without API keys: anyone who reaches the port can change data.",
)
@click.option("--no-log", is_flag=True, help="Do not record served predictions.")
@click.option(
    "--record-images",
    is_flag=True,
    help="Keep each predicted image in the prediction log (to send it to a project).",
)
@click.option(
    "--allow-private-urls",
    is_flag=True,
    help="Let requests name images on loopback and private addresses.",
)
@click.option(
    "--batch-window-ms",
    type=click.FloatRange(0, 1000),
    default=None,
    help="How long concurrent requests for one model may wait to share a call "
    "(0: never batch). [default: $PIGEONHOLE_BATCH_WINDOW_MS or 5]",
)
@workspace_option
@friendly_errors
def serve_command(
    host: str,
    port: int,
    no_auth: bool,
    no_log: bool,
    record_images: bool,
    allow_private_urls: bool,
    batch_window_ms: float | None,
    workspace_path: Path,
) -> None:
    """Serve the workspace over HTTP (API docs at /docs)."""
    from pigeonhole.server import ServerSettings
    from pigeonhole.server.auth import ensure_first_key

    settings = ServerSettings(
        host=host,
        port=port,
        require_keys=not no_auth,
        record_predictions=not no_log,
        record_images=record_images,
        allow_private_urls=allow_private_urls,
    )
    if batch_window_ms is not None:
        settings = replace(settings, batch_window_ms=batch_window_ms)
    workspace = open_workspace(workspace_path)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown_host}:{port}"
    if no_auth and not settings.is_loopback:
        click.echo(
            f"Warning: serving {host} without API keys; anyone who reaches port "
            f"{port} can read and change the workspace",
            err=True,
        )
    first_key = None if no_auth else ensure_first_key(workspace)
    if first_key is not None:
        click.echo(
            "Created the first API key, 'admin' (read-write); it is shown this once "
            "only, copy it now:",
            err=True,
        )
        click.echo(first_key)
        click.echo(f"Open {base}/?api_key={first_key}")
    click.echo(f"Serving {workspace.root} on {base} (API docs: {base}/docs)", err=True)
    try:
        run_server(workspace, settings)
    finally:
        workspace.close()


def run_server(
    workspace: Workspace,
    settings: ServerSettings,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serves ``workspace`` until interrupted; ``on_ready`` is called in a thread of
    its own with the base URL once the server accepts connections."""
    import uvicorn

    from pigeonhole.server import create_app

    # log_config=None: keep the logging the CLI configured, once, for uvicorn too.
    config = uvicorn.Config(
        create_app(workspace, settings=settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        threading.Thread(
            target=_when_started, args=(server, on_ready), daemon=True
        ).start()
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after a clean shutdown
        logger.info("server stopped by an interrupt")


def serve_demo(summary: DemoSummary, port: int, *, stderr: bool = False) -> None:
    """Serves the demo workspace, predicts its sample image over HTTP as a client
    would (and prints the ``curl`` line that does the same), then serves on until
    interrupted. With ``stderr`` all of it is printed there (stdout holds JSON)."""
    from pigeonhole.server import ServerSettings
    from pigeonhole.server.auth import create_key, list_keys, revoke_key

    workspace = open_workspace(summary.workspace)
    # One live demo key: the one printed below; earlier runs' keys are revoked.
    for old in list_keys(workspace):
        if old.name == DEMO_KEY and not old.revoked:
            revoke_key(workspace, str(old.id))
    key, _ = create_key(workspace, DEMO_KEY)
    model_id = summary.model["model_id"]
    image = Path(summary.sample_image)

    def say(text: str) -> None:
        click.echo(text, err=stderr)

    def predict_once(base: str) -> None:
        import httpx

        url = f"{base}/{model_id}"
        say(f"Serving {model_id} at {base} (web UI: {base}/?api_key={key})")
        if image.is_file():
            try:
                answer = httpx.post(
                    url,
                    params={"api_key": key},
                    files={"file": (image.name, image.read_bytes(), "image/png")},
                    timeout=60,
                )
            except httpx.HTTPError as error:
                click.echo(f"Error: the demo prediction failed: {error}", err=True)
                return
            say(f"Predicted {image} as a client would:")
            say(f"  curl -X POST '{url}?api_key={key}' -F 'file=@{image}'")
            say(f"  {answer.text}")
        click.echo("Serving until Ctrl-C.", err=True)

    try:
        run_server(workspace, ServerSettings(port=port), on_ready=predict_once)
    finally:
        workspace.close()


def _when_started(server: uvicorn.Server, on_ready: Callable[[str], None]) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    on_ready(f"http://{shown}:{port}")


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke the server's API keys."""


@keys_group.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="A key that cannot change data.")
@workspace_option
@json_option
@friendly_errors
def keys_create(
    name: str, read_only: bool, workspace_path: Path, as_json: bool
) -> None:
    """Create a key called NAME and print it (it is shown this once only)."""
    from pigeonhole.server.auth import create_key

    key, record = create_key(open_workspace(workspace_path), name, read_only=read_only)
    if as_json:
        print_json({"key": key} | _key_dict(record))
        return
    click.echo(key)
    access = "read-only" if read_only else "read-write"
    click.echo(
        f"Created {access} key {record.id} ({record.prefix}...) for {name!r}; copy "
        "it now, it is not stored and cannot be shown again",
        err=True,
    )


@keys_group.command("list")
@workspace_option
@json_option
@friendly_errors
def keys_list(workspace_path: Path, as_json: bool) -> None:
    """List keys by prefix: name, access, created and revoked times."""
    from pigeonhole.server.auth import list_keys

    keys = list_keys(open_workspace(workspace_path))
    if as_json:
        print_json([_key_dict(key) for key in keys])
        return
    if not keys:
        click.echo("No API keys yet: pigeonhole keys create NAME")
    for key in keys:
        access = "read-only" if key.read_only else "read-write"
        state = (
            f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        )
        click.echo(
            f"{key.id:>4}  {key.prefix}...  {access:<10}  {state:<24}  "
            f"created {key.created_at:%Y-%m-%d %H:%M}  {key.name}"
        )


@keys_group.command("revoke")
@click.argument("prefix")
@workspace_option
@json_option
@friendly_errors
def keys_revoke(prefix: str, workspace_path: Path, as_json: bool) -> None:
    """Revoke the key whose prefix (or id) is PREFIX."""
    from pigeonhole.server.auth import revoke_key

    record = revoke_key(open_workspace(workspace_path), prefix)
    if as_json:
        print_json(_key_dict(record))
        return
    click.echo(f"Revoked key {record.id} ({record.prefix}...) of {record.name!r}")


def _key_dict(key: ApiKey) -> dict[str, object]:
    return asdict(key) | {"revoked": key.revoked}


server_commands = [serve_command, keys_group]

"""``pigeonhole keys`` and the first key ``pigeonhole serve`` creates."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pigeonhole.cli.main import cli
from pigeonhole.server.auth import authenticate, ensure_first_key, list_keys
from pigeonhole.workspace import Workspace


def run(workspace: Workspace, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [*args, "--workspace", str(workspace.root)])
    assert result.exit_code == code, result.output
    return result.stdout


def test_keys_create_list_revoke(workspace: Workspace) -> None:
    key = run(workspace, "keys", "create", "ci", "--read-only").strip()
    listed = json.loads(run(workspace, "keys", "list", "--json"))
    read_only = authenticate(workspace, key).read_only
    run(workspace, "keys", "revoke", key[:8])
    after = json.loads(run(workspace, "keys", "list", "--json"))

    assert read_only
    assert [(k["name"], k["read_only"], k["revoked"]) for k in listed] == [
        ("ci", True, False)
    ]
    assert after[0]["revoked"]
    assert key not in json.dumps(listed)


def test_revoking_an_unknown_key_fails(workspace: Workspace) -> None:
    result = CliRunner().invoke(
        cli, ["keys", "revoke", "ph_nope", "--workspace", str(workspace.root)]
    )

    assert result.exit_code == 1
    assert "no API key" in result.output


def test_first_key_only_when_none_is_active(workspace: Workspace) -> None:
    first = ensure_first_key(workspace)
    second = ensure_first_key(workspace)

    assert first is not None and authenticate(workspace, first).name == "admin"
    assert second is None
    assert len(list_keys(workspace)) == 1


def test_keys_list_when_empty(workspace: Workspace, tmp_path: Path) -> None:
    assert "No API keys yet" in run(workspace, "keys", "list")

"""A throwaway PostgreSQL server for tests: its own cluster in a temporary folder.

The server listens on a Unix socket in its folder only (no TCP port to collide
on), trusts local connections and skips fsync, so it starts in about a second.
Debian's ``postgresql`` package provides the programs
(``scripts/system-packages.sh`` installs it); PostgreSQL refuses to run as root,
so under root the cluster belongs to the ``postgres`` user and its programs run
through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

#: Where Debian puts the server programs, one folder per major version.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
USER = "pigeonhole"


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest version first."""
    if DEBIAN_BINARIES.is_dir():
        versions = sorted(
            (path for path in DEBIAN_BINARIES.iterdir() if path.name.isdigit()),
            key=lambda path: int(path.name),
            reverse=True,
        )
        for version in versions:
            if (version / "bin" / "initdb").exists():
                return version / "bin"
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


class PostgresServer:
    """A PostgreSQL cluster in ``folder``; `start` it, make databases, `stop` it.

    Args:
        folder: An empty folder for the cluster's files and socket.
        binaries: Where ``initdb`` and ``pg_ctl`` are.
    """

    def __init__(self, folder: Path, binaries: Path) -> None:
        self.folder = folder
        self.binaries = binaries
        self.data = folder / "data"
        self._prefix: list[str] = []
        self._databases = 0
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, program: str, *args: str) -> None:
        command = [*self._prefix, str(self.binaries / program), *args]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        """Creates the cluster and starts its server; returns once it accepts."""
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        options = f"-k {self.folder} -c listen_addresses='' -F"
        log = str(self.folder / "server.log")
        self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Stops the server at once (the cluster is thrown away)."""
        self._run("pg_ctl", "--pgdata", str(self.data), "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{USER}@/{database}?host={self.folder}"

    def new_database(self) -> str:
        """Creates an empty database; returns its SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"test_{self._databases}"
        address = f"host={self.folder} user={USER} dbname=postgres"
        with psycopg.connect(address, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

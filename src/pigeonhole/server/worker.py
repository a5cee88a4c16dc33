"""The training worker: one background process that runs queued runs, one at a time.

A request that starts a run only queues it (a ``queued`` row) and hands its id to
the worker; it never trains. The worker is a separate process (the ``spawn`` start
method, so it shares no threads or locks with the server) that opens the workspace
itself and calls `pigeonhole.training.runs.execute_run` for each id in turn. The run
writes its progress to the database, where the server reads it. A crash of a run
cannot take the server down; a crash of the server leaves ``queued`` or ``running``
rows, which `fail_interrupted_runs` marks failed when the next server starts. The
worker ends itself when the server process is gone (killed, not stopped), so an
orphan cannot go on writing to a run the next server has already marked failed.

The server is told when a run ends (to send webhooks) through a second queue read
by a thread of its own.

Example:
    >>> worker = TrainingWorker(root, database_url)  # doctest: +SKIP
    >>> worker.submit(run_id)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Seconds the worker gets to finish on its own before it is terminated.
STOP_TIMEOUT_S = 5.0
#: Seconds between the worker's checks that the server process still exists.
PARENT_CHECK_S = 0.5

RunEnded = Callable[[int], None]


class TrainingWorker:
    """Owns the worker process; started on the first `submit`.

    Args:
        root: The workspace folder.
        database_url: The workspace's database URL.
        on_run_ended: Called in a server thread with the id of each run that ended.
    """

    def __init__(
        self, root: Path, database_url: str, on_run_ended: RunEnded | None = None
    ) -> None:
        self.root = root
        self.database_url = database_url
        self.on_run_ended = on_run_ended
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: Any = None
        self._jobs: Any = None
        self._ended: Any = None
        self._watcher: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self._process is not None and self._process.is_alive()

    def submit(self, run_id: int) -> None:
        """Hands a queued run to the worker, starting the worker when needed."""
        with self._lock:
            if not self.alive:
                self._start()
            self._jobs.put(run_id)
        logger.info("run %d handed to the training worker", run_id)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Asks the worker to stop after its current run; terminates it after
        ``timeout_s``. A run it was in the middle of is left for
        `fail_interrupted_runs`."""
        with self._lock:
            process, jobs = self._process, self._jobs
            self._process = None
        if process is None:
            return
        jobs.put(None)
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(timeout_s)
        self._ended.put(None)

    def _start(self) -> None:
        self._jobs = self._context.Queue()
        self._ended = self._context.Queue()
        self._process = self._context.Process(
            target=work,
            args=(str(self.root), self.database_url, self._jobs, self._ended),
            name="pigeonhole-training-worker",
            daemon=True,
        )
        self._process.start()
        self._watcher = threading.Thread(
            target=self._watch, args=(self._ended,), daemon=True
        )
        self._watcher.start()
        logger.info("started the training worker (pid %s)", self._process.pid)

    def _watch(self, ended: Any) -> None:
        while True:
            try:
                run_id = ended.get()
            except (EOFError, OSError):
                return
            if run_id is None:
                return
            if self.on_run_ended is not None:
                try:
                    self.on_run_ended(run_id)
                except Exception:
                    logger.exception("handling the end of run %d failed", run_id)


def work(root: str, database_url: str, jobs: Any, ended: Any) -> None:
    """The worker process: runs each queued run id until it gets None."""
    from pigeonhole.errors import PigeonholeError
    from pigeonhole.training.runs import execute_run
    from pigeonhole.workspace import Workspace

    parent = os.getppid()
    threading.Thread(
        target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True
    ).start()
    workspace = Workspace.open(root, database_url=database_url)
    try:
        while True:
            try:
                run_id = jobs.get()
            except (EOFError, OSError, KeyboardInterrupt):
                return
            if run_id is None:
                return
            try:
                info = execute_run(workspace, run_id)
                logger.info("run %d ended %s", run_id, info.status)
            except PigeonholeError as error:
                # Cancelled before it started, or deleted: nothing to train.
                logger.info("run %d not started: %s", run_id, error)
            ended.put(run_id)
    finally:
        workspace.close()


def _exit_with_parent(parent: int) -> None:
    """Ends the worker process at once when the server that started it is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    logger.warning("the server (pid %d) is gone; the training worker stops", parent)
    os._exit(1)

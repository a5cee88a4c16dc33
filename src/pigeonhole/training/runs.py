"""Training runs: one row per job, from "queued" to a numbered model.

A run is created ``queued`` (`create_run`), then executed to its end by
`execute_run`, in this process or in a worker process the server starts. While it
works it writes its ``phase``, ``done``, ``total`` and ``history`` to its row (at most
a few writes a second), so any process can show progress, and it asks the row
between batches whether a cancel was requested. It ends ``succeeded`` (with the
number of the model it made), ``cancelled`` or ``failed`` (with a readable message),
never ``running``; `fail_interrupted_runs` cleans up after a process that died.

The steps themselves are in `pigeonhole.training.pipeline`.

Example:
    >>> model = train(project, config=TrainConfig(mode="fast"))  # doctest: +SKIP
    >>> model.model_id, model.metrics["accuracy"]  # doctest: +SKIP
    ('bananas/1', 0.97)
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pigeonhole.errors import (
    ConflictError,
    NotFoundError,
    PigeonholeError,
    ValidationError,
)
from pigeonhole.models.backbones import get_backbone
from pigeonhole.progress import Progress
from pigeonhole.storage.database import RunRow, VersionRow, utcnow
from pigeonhole.training import RunCancelled

if TYPE_CHECKING:
    from pigeonhole.project import Project
    from pigeonhole.training.registry import TrainedModel
    from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)

MODES = ("fast", "fine-tune")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
INTERRUPTED_MESSAGE = "interrupted by a server restart"

# Seconds between progress writes to the row, and between reads of its cancel flag.
_WRITE_INTERVAL = 0.5


class RunFailed(PigeonholeError):
    """A training run ended ``failed``; the message says why."""

    code = "run_failed"


@dataclass(frozen=True)
class TrainConfig:
    """What a run trains.

    Attributes:
        mode: ``fast`` (a head on cached embeddings) or ``fine-tune``.
        backbone: A registered backbone name.
        class_weighting: Weight the loss by inverse class frequency.
        target_precision: Multi-label: per-class thresholds reach this precision
            on the valid split; None chooses each class's maximum F1.
        rejection_precision: Single-label: the confidence threshold below which
            the model gives no answer is the lowest reaching this accuracy on the
            valid split.
        seed: Seeds everything random in the run.
        fine_tune: `pigeonhole.training.finetune.FineTuneConfig` fields (fine-tune
            mode); fast mode reads ``head`` (``linear`` or ``mlp``) and
            ``label_smoothing`` from it too.

    Raises:
        ValidationError: A value out of range or an unknown backbone.
    """

    mode: str = "fast"
    backbone: str = "mobilenet_v2"
    class_weighting: bool = True
    target_precision: float | None = None
    rejection_precision: float = 0.95
    seed: int = 0
    fine_tune: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValidationError(
                f"mode={self.mode!r} is not one of: {', '.join(MODES)}"
            )
        get_backbone(self.backbone)
        if self.target_precision is not None and not 0 < self.target_precision <= 1:
            raise ValidationError(
                f"target_precision={self.target_precision!r} must be in (0, 1] or "
                "None (maximum F1)"
            )
        if not 0 < self.rejection_precision <= 1:
            raise ValidationError(
                f"rejection_precision={self.rejection_precision!r} must be in (0, 1]"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValidationError(f"seed={self.seed!r} must be a whole number")
        if not isinstance(self.fine_tune, dict):
            raise ValidationError(
                f"fine_tune={self.fine_tune!r} must be a mapping of settings"
            )
        if self.mode == "fine-tune":
            self.fine_tune_config()
        else:
            self.head_config()

    def fine_tune_config(self) -> Any:
        """The `FineTuneConfig` of a fine-tune run (imports torch)."""
        from pigeonhole.training.finetune import FineTuneConfig

        values = {"class_weighting": self.class_weighting, "seed": self.seed}
        return FineTuneConfig.from_dict(values | self.fine_tune)

    def head_config(self) -> Any:
        """The `HeadConfig` of a fast run, from ``head`` and ``label_smoothing``.

        Raises:
            ValidationError: Other keys in :attr:`fine_tune`, or bad values.
        """
        from pigeonhole.training.heads import HeadConfig

        accepted = ("head", "label_smoothing")
        unknown = sorted(str(key) for key in self.fine_tune if key not in accepted)
        if unknown:
            raise ValidationError(
                f"fast mode does not take the setting(s) "
                f"{', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)} "
                "(the others are for mode='fine-tune')"
            )
        return HeadConfig(
            kind=str(self.fine_tune.get("head", "linear")),
            class_weighting=self.class_weighting,
            label_smoothing=float(self.fine_tune.get("label_smoothing", 0.0)),
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-safe values; `from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Reads what `to_dict` wrote; missing keys take defaults.

        Raises:
            ValidationError: Unknown keys or values out of range.
        """
        accepted = [item.name for item in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in accepted)
        if unknown:
            raise ValidationError(
                f"unknown training setting(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(accepted)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class RunInfo:
    """A snapshot of a run's row.

    Attributes:
        id: Run id, unique in the workspace.
        project: Slug of the project.
        version: Number of the dataset version trained on.
        mode: ``fast`` or ``fine-tune``.
        backbone: Backbone name.
        config: The resolved `TrainConfig` as a dict.
        status: ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        phase: What the run is doing (``embed``, ``head``, ``fine-tune``, ...).
        done: Steps done in the phase.
        total: Steps in the phase, None when unknown.
        history: One row per epoch (fine-tune) or per weight decay tried (fast):
            ``epoch`` or ``phase``, losses and ``valid_metric``.
        message: Why it failed or was cancelled; a summary when it succeeded.
        cancel_requested: Whether a cancel was asked for.
        model_number: Number of the model it made, once succeeded.
        created_at: When it was queued.
        started_at: When it started running.
        finished_at: When it ended.
    """

    id: int
    project: str
    version: int | None
    mode: str
    backbone: str
    config: dict[str, Any]
    status: str
    phase: str
    done: int
    total: int | None
    history: list[dict[str, Any]]
    message: str
    cancel_requested: bool
    model_number: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether the run has ended, one way or another."""
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; times as ISO 8601 text."""
        data = asdict(self)
        for name in ("created_at", "started_at", "finished_at"):
            moment = data[name]
            data[name] = moment.isoformat() if moment is not None else None
        return data


def create_run(
    project: Project, version: int | None = None, config: TrainConfig | None = None
) -> RunInfo:
    """Queues a run on a dataset version of ``project``.

    Args:
        project: The project.
        version: Dataset version number; the newest when None.
        config: What to train; `TrainConfig`'s defaults when omitted.

    Raises:
        NotFoundError: The project has no such version (or none at all).
    """
    config = config or TrainConfig()
    found = project.version(version)
    with project.workspace.sessions.begin() as session:
        version_id = session.scalar(
            select(VersionRow.id).where(
                VersionRow.project_id == project.id,
                VersionRow.number == found.number,
            )
        )
        row = RunRow(
            project_id=project.id,
            version_id=version_id,
            mode=config.mode,
            backbone=config.backbone,
            config=config.to_dict(),
            status="queued",
            phase="",
            done=0,
            history=[],
            message="",
            cancel_requested=False,
        )
        session.add(row)
        session.flush()
        run_id = row.id
    logger.info("queued run %d on %s", run_id, found.id)
    return get_run(project.workspace, run_id)


def get_run(workspace: Workspace, run_id: int) -> RunInfo:
    """The run ``run_id``.

    Raises:
        NotFoundError: No such run.
    """
    with workspace.sessions() as session:
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no training run with id {run_id}")
        return _info(session, row)


def list_runs(project: Project) -> list[RunInfo]:
    """Every run of ``project``, newest first."""
    with project.workspace.sessions() as session:
        rows = session.scalars(
            select(RunRow)
            .where(RunRow.project_id == project.id)
            .order_by(RunRow.id.desc())
        )
        return [_info(session, row) for row in rows]


def cancel_run(workspace: Workspace, run_id: int) -> RunInfo:
    """Asks a run to stop; a queued run is cancelled at once.

    A running run stops at its next batch and ends ``cancelled``. Cancelling a
    finished run changes nothing.

    Raises:
        NotFoundError: No such run.
    """
    with workspace.sessions.begin() as session:
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no training run with id {run_id}")
        if row.status not in FINISHED:
            row.cancel_requested = True
        if row.status == "queued":
            row.status = "cancelled"
            row.message = "cancelled before it started"
            row.finished_at = utcnow()
    return get_run(workspace, run_id)


def fail_interrupted_runs(workspace: Workspace) -> int:
    """Marks every queued or running run as failed; for a server starting up.

    Returns:
        How many runs were marked.
    """
    with workspace.sessions.begin() as session:
        rows = list(
            session.scalars(
                select(RunRow).where(RunRow.status.in_(("queued", "running")))
            )
        )
        for row in rows:
            row.status = "failed"
            row.message = INTERRUPTED_MESSAGE
            row.finished_at = utcnow()
    if rows:
        logger.warning("marked %d interrupted training run(s) as failed", len(rows))
    return len(rows)


def execute_run(
    workspace: Workspace, run_id: int, progress: Progress | None = None
) -> RunInfo:
    """Runs a queued run to its end and returns its final state.

    Errors do not escape: they end the run ``failed`` with the error's message.
    Only an interrupt (Ctrl-C, a signal) is re-raised, after the run is marked
    failed.

    Args:
        workspace: The workspace holding the run.
        run_id: A ``queued`` run.
        progress: Also called with every ``(phase, done, total)``.

    Raises:
        NotFoundError: No such run.
        ConflictError: The run is not queued.
    """
    info, _error = _execute(workspace, run_id, progress)
    return info


def train(
    project: Project,
    version: int | None = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Trains a model on a dataset version and returns it: the notebook API.

    Args:
        project: The project.
        version: Dataset version number; the newest when None.
        config: What to train; `TrainConfig`'s defaults (fast mode) when omitted.
        progress: Called with ``(phase, done, total)`` as the run goes.

    Returns:
        The new model.

    Raises:
        RunCancelled: The run was cancelled.
        PigeonholeError: The error that failed the run (the run is ``failed``).

    Example:
        >>> config = TrainConfig(mode="fine-tune")
        >>> model = train(project, config=config)  # doctest: +SKIP
        >>> model.path  # doctest: +SKIP
        PosixPath('/data/workspace/models/bananas/2')
    """
    from pigeonhole.training.registry import get_model

    run = create_run(project, version, config)
    info, error = _execute(project.workspace, run.id, progress)
    if error is not None:
        raise error
    if info.status != "succeeded" or info.model_number is None:
        raise RunFailed(f"run {info.id} ended {info.status}: {info.message}")
    return get_model(project, info.model_number)


def _execute(
    workspace: Workspace, run_id: int, progress: Progress | None
) -> tuple[RunInfo, BaseException | None]:
    from pigeonhole.training.pipeline import run_pipeline

    recorder = RunRecorder(workspace, run_id, progress)
    recorder.start()
    error: BaseException | None = None
    try:
        number = run_pipeline(workspace, recorder)
    except RunCancelled as cancelled:
        recorder.finish("cancelled", str(cancelled) or "cancelled")
        error = cancelled
    except PigeonholeError as failure:
        recorder.finish("failed", str(failure))
        error = failure
    except Exception as failure:  # any bug must still end the run
        logger.exception("run %d failed", run_id)
        recorder.finish("failed", f"{type(failure).__name__}: {failure}")
        error = failure
    except BaseException:
        recorder.finish("failed", "interrupted")
        raise
    else:
        recorder.finish("succeeded", f"model {number}", model_number=number)
    return get_run(workspace, run_id), error


class RunRecorder:
    """Writes a run's progress to its row, throttled, and reads its cancel flag.

    Args:
        workspace: The workspace holding the run.
        run_id: The run.
        progress: Also called with every ``(phase, done, total)``.
    """

    def __init__(
        self, workspace: Workspace, run_id: int, progress: Progress | None
    ) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self.forward = progress
        self.history: list[dict[str, Any]] = []
        self._last_write = 0.0
        self._last_check = 0.0
        self._cancel = False

    def start(self) -> None:
        """Moves the run from queued to running."""
        with self.workspace.sessions.begin() as session:
            row = self._row(session)
            if row.status != "queued":
                raise ConflictError(
                    f"run {self.run_id} is {row.status}; only a queued run can be "
                    "executed: start a new run"
                )
            row.status = "running"
            row.started_at = utcnow()

    def info(self) -> RunInfo:
        """The run as it is now."""
        return get_run(self.workspace, self.run_id)

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        """The progress callback: forwards it, writes it at most twice a second."""
        if self.forward is not None:
            self.forward(phase, done, total)
        now = time.monotonic()
        finished_phase = total is not None and done >= total
        if now - self._last_write < _WRITE_INTERVAL and not finished_phase:
            return
        self._last_write = now
        with self.workspace.sessions.begin() as session:
            row = self._row(session)
            row.phase, row.done, row.total = phase, done, total

    def add_history(self, rows: list[dict[str, Any]]) -> None:
        """Appends rows to the run's history, written at once."""
        self.history.extend(rows)
        with self.workspace.sessions.begin() as session:
            self._row(session).history = list(self.history)

    def cancelled(self) -> bool:
        """Whether a cancel was requested (read from the row at most twice a second)."""
        now = time.monotonic()
        if not self._cancel and now - self._last_check >= _WRITE_INTERVAL:
            self._last_check = now
            with self.workspace.sessions() as session:
                self._cancel = bool(self._row(session).cancel_requested)
        return self._cancel

    def check_cancelled(self, step: str) -> None:
        """Raises `RunCancelled` when a cancel was requested."""
        self._last_check = 0.0
        if self.cancelled():
            raise RunCancelled(f"cancelled before {step}")

    def finish(
        self, status: str, message: str, model_number: int | None = None
    ) -> None:
        """Ends the run with ``status`` and ``message``."""
        with self.workspace.sessions.begin() as session:
            row = self._row(session)
            row.status = status
            row.message = message[:2000]
            row.model_number = model_number
            row.finished_at = utcnow()
        logger.info("run %d %s: %s", self.run_id, status, message)

    def _row(self, session: Any) -> RunRow:
        row = session.get(RunRow, self.run_id)
        if row is None:
            raise NotFoundError(f"no training run with id {self.run_id}")
        assert isinstance(row, RunRow)
        return row


def _info(session: Any, row: RunRow) -> RunInfo:
    from pigeonhole.storage.database import ProjectRow

    project = session.get(ProjectRow, row.project_id)
    version = session.get(VersionRow, row.version_id) if row.version_id else None
    return RunInfo(
        id=row.id,
        project=project.slug if project is not None else "",
        version=version.number if version is not None else None,
        mode=row.mode,
        backbone=row.backbone,
        config=dict(row.config or {}),
        status=row.status,
        phase=row.phase,
        done=row.done,
        total=row.total,
        history=list(row.history or []),
        message=row.message,
        cancel_requested=bool(row.cancel_requested),
        model_number=row.model_number,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )

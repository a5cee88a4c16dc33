"""The steps of a training run, from a dataset version to a numbered model package.

1. Read the version's train, valid and test splits.
2. Train: fast mode embeds every image (cached, `embeddings`) and fits a head on
   the embeddings (`heads`); fine-tune mode runs `finetune.fine_tune`.
3. Logits and embeddings of the valid and test images.
4. Calibrate on the valid split: temperature scaling, then the rejection threshold
   (single-label) or per-class thresholds (multi-label), the conformal quantile and
   the out-of-distribution threshold (k-NN distance to the training images).
5. Evaluate on the test split, which no step above has seen.
6. Export the ONNX graph, check parity, write the package to
   ``<workspace>/models/<project-slug>/<n>/`` and record the model's row.

Example:
    >>> number = run_pipeline(workspace, recorder)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import func, select

from pigeonhole.datasets.versions import DatasetVersion, VersionItem
from pigeonhole.errors import ValidationError
from pigeonhole.evaluation.calibration import fit_temperature
from pigeonhole.evaluation.report import model_card
from pigeonhole.evaluation.thresholds import (
    conformal_quantile,
    rejection_threshold,
    tune_class_thresholds,
)
from pigeonhole.models.backbones import build_backbone, get_backbone
from pigeonhole.models.metadata import ModelMetadata
from pigeonhole.models.package import CARD_FILE, REPORT_FILE, write_package
from pigeonhole.project import Project
from pigeonhole.storage.database import ModelRow, RunRow
from pigeonhole.training.embeddings import embed_items
from pigeonhole.training.heads import HeadConfig, fit_head, head_summary, labels_matrix
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.modules import Classifier
from pigeonhole.training.runs import RunRecorder, TrainConfig
from pigeonhole.training.scoring import Decision, Scores, plot_history, score_outputs
from pigeonhole.workspace import Workspace

logger = logging.getLogger(__name__)

MODELS_FOLDER = "models"
#: Share of valid images the out-of-distribution threshold lets through.
OOD_QUANTILE = 0.95
#: Most training embeddings kept as the out-of-distribution reference.
OOD_REFERENCE_LIMIT = 20_000
CONFORMAL_COVERAGE = 0.9
#: Valid images the ONNX graph is checked against torch on (the first ones).
PARITY_IMAGES = 32
SPLITS = ("train", "valid", "test")


@dataclass
class _Outputs:
    """Labels, logits and embeddings of one split's images."""

    items: list[VersionItem]
    labels: np.ndarray
    logits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass
class _Trained:
    classifier: Classifier
    outputs: dict[str, _Outputs]
    history: list[dict[str, Any]]
    details: dict[str, Any]


def run_pipeline(workspace: Workspace, recorder: RunRecorder) -> int:
    """Runs every step of the run ``recorder`` records; returns the model number.

    Raises:
        ValidationError: An empty train or valid split.
        RunCancelled: The run was cancelled.
        PigeonholeError: Any step's own error (weights, images, export).
    """
    info = recorder.info()
    project = workspace.project(info.project)
    version = project.version(info.version)
    config = TrainConfig.from_dict(info.config)
    multi = project.type.is_multi_label
    data = {split: _split(version, split, multi) for split in SPLITS}
    for split in ("train", "valid"):
        if not data[split].items:
            raise ValidationError(
                f"dataset version {version.id} has no {split} images; assign splits "
                f"with `pigeonhole split {project.slug}` and create a new version"
            )
    if config.mode == "fast":
        trained = _train_fast(version, config, data, recorder)
    else:
        trained = _train_fine_tune(workspace, version, config, data, recorder)
    recorder.add_history(trained.history)
    recorder.check_cancelled("calibration")
    recorder("calibrate", 0, 1)
    decision, extra = _calibrate(version, config, trained.outputs["valid"], multi)
    ood = _ood(trained.outputs)
    recorder("calibrate", 1, 1)
    recorder.check_cancelled("export")
    return _package(
        project, version, config, trained, decision, {**extra, "ood": ood}, recorder
    )


def _split(version: DatasetVersion, split: str, multi: bool) -> _Outputs:
    items = version.items(split)
    names = version.class_names
    if multi:
        labels = labels_matrix([item.labels for item in items], names)
    else:
        position = {name: index for index, name in enumerate(names)}
        labels = np.array([position[item.labels[0]] for item in items], dtype=np.int64)
    return _Outputs(items=items, labels=labels)


def _train_fast(
    version: DatasetVersion,
    config: TrainConfig,
    data: dict[str, _Outputs],
    recorder: RunRecorder,
) -> _Trained:
    for split in SPLITS:
        data[split].embeddings = embed_items(
            version,
            data[split].items,
            config.backbone,
            progress=recorder,
            cancelled=recorder.cancelled,
        )
    head_config: HeadConfig = config.head_config()
    recorder("head", 0, 1)
    head, fit = fit_head(
        data["train"].embeddings,
        data["train"].labels,
        data["valid"].embeddings,
        data["valid"].labels,
        multi_label=version.project.type.is_multi_label,
        config=head_config,
        cancelled=recorder.cancelled,
    )
    recorder("head", 1, 1)
    with torch.no_grad():
        for split in SPLITS:
            embeddings = torch.from_numpy(data[split].embeddings)
            data[split].logits = head(embeddings).numpy()
    backbone, _dimension = build_backbone(config.backbone)
    model_input = ModelInput.for_backbone(config.backbone)
    classifier = Classifier(backbone, head, model_input).eval()
    return _Trained(
        classifier, data, fit.history, {"head": head_summary(head_config, fit)}
    )


def _train_fine_tune(
    workspace: Workspace,
    version: DatasetVersion,
    config: TrainConfig,
    data: dict[str, _Outputs],
    recorder: RunRecorder,
) -> _Trained:
    from pigeonhole.training.finetune import fine_tune

    fine_tune_config = config.fine_tune_config()
    checkpoint = workspace.root / "runs" / str(recorder.run_id) / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    result = fine_tune(
        version,
        config.backbone,
        config=fine_tune_config,
        checkpoint_path=checkpoint,
        progress=recorder,
        cancelled=recorder.cancelled,
    )
    classifier = result.classifier.eval()
    for split in SPLITS:
        _predict(version, classifier, data[split], split, recorder)
    shutil.rmtree(checkpoint.parent, ignore_errors=True)
    details = {
        "fine_tune": fine_tune_config.to_dict(),
        "best_epoch": result.best_epoch,
        "resumed": result.resumed,
    }
    return _Trained(classifier, data, list(result.history), details)


def _predict(
    version: DatasetVersion,
    classifier: Classifier,
    outputs: _Outputs,
    split: str,
    recorder: RunRecorder,
    batch_size: int = 32,
) -> None:
    logits, embeddings = [], []
    items = outputs.items
    for start in range(0, len(items), batch_size):
        recorder.check_cancelled(f"predicting the {split} split")
        batch = items[start : start + batch_size]
        pixels = classifier.model_input.batch(version.load(item) for item in batch)
        with torch.no_grad():
            batch_logits, batch_embeddings = classifier(torch.from_numpy(pixels))
        logits.append(batch_logits.numpy())
        embeddings.append(batch_embeddings.numpy())
        recorder(f"predict-{split}", start + len(batch), len(items))
    classes = len(version.class_names)
    outputs.logits = np.concatenate(logits) if logits else np.zeros((0, classes))
    outputs.embeddings = (
        np.concatenate(embeddings) if embeddings else np.zeros((0, 1), np.float32)
    )


def _calibrate(
    version: DatasetVersion, config: TrainConfig, valid: _Outputs, multi: bool
) -> tuple[Decision, dict[str, Any]]:
    names = tuple(version.class_names)
    temperature = fit_temperature(valid.logits, valid.labels, multi_label=multi)
    decision = Decision(names, multi, temperature)
    probabilities = decision.probabilities(valid.logits)
    if multi:
        target = config.target_precision
        thresholds = tune_class_thresholds(
            valid.labels,
            probabilities,
            objective="f1" if target is None else "precision",
            target_precision=target if target is not None else 0.9,
        )
        decision = Decision(
            names, multi, temperature, class_thresholds=thresholds.thresholds
        )
        return decision, {"thresholds": thresholds.to_dict()}
    threshold = rejection_threshold(
        valid.labels, probabilities, target_precision=config.rejection_precision
    )
    quantile = conformal_quantile(valid.labels, probabilities, CONFORMAL_COVERAGE)
    decision = Decision(names, multi, temperature, rejection_threshold=threshold)
    return decision, {"conformal_quantile": quantile}


def _ood(outputs: dict[str, _Outputs]) -> tuple[dict[str, Any], np.ndarray | None]:
    """k-NN distance to the un-augmented training images, cut at the valid 95%."""
    train = outputs["train"]
    originals = [index for index, item in enumerate(train.items) if item.copy == 0]
    reference = _unit(train.embeddings[originals])
    if len(reference) > OOD_REFERENCE_LIMIT:
        keep = np.random.default_rng(0).choice(
            len(reference), OOD_REFERENCE_LIMIT, replace=False
        )
        reference = reference[np.sort(keep)]
    valid = _unit(outputs["valid"].embeddings)
    if len(reference) == 0 or len(valid) == 0:
        return {}, None
    scores = 1.0 - (valid @ reference.T).max(axis=1)
    threshold = float(np.quantile(scores, OOD_QUANTILE))
    settings = {"kind": "knn", "k": 1, "threshold": threshold}
    return settings | {"valid_quantile": OOD_QUANTILE}, reference.astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12))


def _package(
    project: Project,
    version: DatasetVersion,
    config: TrainConfig,
    trained: _Trained,
    decision: Decision,
    extra: dict[str, Any],
    recorder: RunRecorder,
) -> int:
    recorder("evaluate", 0, 1)
    test = trained.outputs["test"]
    number = next_model_number(project)
    folder = model_folder(project, number)
    staging = project.workspace.scratch / f"run-{recorder.run_id}-plots"
    shutil.rmtree(staging, ignore_errors=True)
    scores = score_outputs(test.logits, test.labels, decision, staging)
    plots = scores.plots + plot_history(trained.history, staging)
    recorder("evaluate", 1, 1)
    recorder("export", 0, 1)
    ood, reference = extra["ood"]
    metadata = _metadata(
        project, version, config, trained, decision, extra, scores, number
    )
    parity = trained.outputs["valid"].items[:PARITY_IMAGES]
    model_input = trained.classifier.model_input
    package = write_package(
        folder,
        trained.classifier,
        ModelMetadata(**{**metadata, "ood": ood}),
        input_size=model_input.size,
        ood_reference=reference,
        parity_batch=model_input.batch(version.load(item) for item in parity),
    )
    if plots:
        shutil.copytree(staging / "plots", folder / "plots")
    shutil.rmtree(staging, ignore_errors=True)
    _write_report(folder, package.metadata.to_dict(), version, trained, scores, extra)
    with project.workspace.sessions.begin() as session:
        session.add(
            ModelRow(
                project_id=project.id,
                number=number,
                run_id=recorder.run_id,
                version_number=version.number,
                mode=config.mode,
                backbone=config.backbone,
                path=folder.relative_to(project.workspace.root).as_posix(),
                metrics=scores.summary,
            )
        )
    recorder("export", 1, 1)
    return number


def _metadata(
    project: Project,
    version: DatasetVersion,
    config: TrainConfig,
    trained: _Trained,
    decision: Decision,
    extra: dict[str, Any],
    scores: Scores,
    number: int,
) -> dict[str, Any]:
    spec = get_backbone(config.backbone)
    return {
        "model_id": f"{project.slug}/{number}",
        "project_slug": project.slug,
        "project_type": project.type,
        "class_names": decision.class_names,
        "backbone": {
            "name": spec.name,
            "weights_sha256": spec.weights.sha256,
            "licence": spec.licence,
        },
        "input": trained.classifier.model_input.to_dict(),
        "preprocessing": version.preprocessing.to_dict(),
        "dataset_version": {
            "id": version.id,
            "number": version.number,
            "manifest_hash": version.manifest_hash,
        },
        "temperature": decision.temperature,
        "rejection_threshold": decision.rejection_threshold,
        "class_thresholds": decision.class_thresholds,
        "conformal_quantile": extra.get("conformal_quantile"),
        "conformal_coverage": (
            CONFORMAL_COVERAGE if "conformal_quantile" in extra else None
        ),
        "metrics": scores.summary,
        "training": {
            "mode": config.mode,
            "config": config.to_dict(),
            "history": trained.history,
            **trained.details,
        },
    }


def _write_report(
    folder: Path,
    metadata: dict[str, Any],
    version: DatasetVersion,
    trained: _Trained,
    scores: Scores,
    extra: dict[str, Any],
) -> None:
    split_counts = {name: len(trained.outputs[name].items) for name in SPLITS}
    train_counts: dict[str, int] = {}
    for item in trained.outputs["train"].items:
        for label in item.labels:
            train_counts[label] = train_counts.get(label, 0) + 1
    report = {
        "model_id": metadata["model_id"],
        "split": "test",
        **scores.to_dict(),
        "thresholds": extra.get("thresholds"),
        "ood": metadata["ood"],
        "history": trained.history,
        "split_counts": split_counts,
    }
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    (folder / REPORT_FILE).write_text(text + "\n", encoding="utf-8")
    card = model_card(
        {
            "model_id": metadata["model_id"],
            "project": metadata["project_slug"],
            "project_type": metadata["project_type"],
            "class_names": metadata["class_names"],
            "backbone": metadata["backbone"]["name"],
            "training_mode": metadata["training"]["mode"],
            "dataset_version_id": version.id,
            "manifest_hash": version.manifest_hash,
            "package_version": metadata["pigeonhole_version"],
            "created_at": metadata["created_at"],
            "recipe": version.recipe,
            "split_counts": split_counts,
            "train_class_counts": train_counts,
            "test_metrics": scores.metrics or None,
            "calibration": scores.calibration or None,
            "rejection": scores.rejection,
        }
    )
    (folder / CARD_FILE).write_text(card, encoding="utf-8")


def model_folder(project: Project, number: int) -> Path:
    """``<workspace>/models/<project-slug>/<number>``."""
    return project.workspace.root / MODELS_FOLDER / project.slug / str(number)


def next_model_number(project: Project) -> int:
    """One more than the highest model number the project ever had.

    Numbers of deleted models (still named by their runs) are not reused, so a
    model id always means one model.
    """
    with project.workspace.sessions() as session:
        highest = session.scalar(
            select(func.max(ModelRow.number)).where(ModelRow.project_id == project.id)
        )
        by_runs = session.scalar(
            select(func.max(RunRow.model_number)).where(RunRow.project_id == project.id)
        )
    parent = project.workspace.root / MODELS_FOLDER / project.slug
    on_disk = [int(path.name) for path in parent.glob("*") if path.name.isdigit()]
    return max([highest or 0, by_runs or 0, *on_disk]) + 1

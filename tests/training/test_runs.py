"""Training runs end to end on drawn pictures with the real MobileNetV2 weights.

One module-scoped workspace holds every project, so the embedding graph is
exported once. Every test that trains is marked slow.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from drawn import PER_CLASS, add_pictures, drawn_project, two_colour_picture

from modelgen import CLASS_NAMES
from pigeonhole.errors import NotFoundError, ValidationError
from pigeonhole.models.package import ModelPackage
from pigeonhole.project import Project
from pigeonhole.training.embeddings import EmbeddingCache
from pigeonhole.training.inputs import ModelInput
from pigeonhole.training.pipeline import _calibrate, _Outputs, next_model_number
from pigeonhole.training.registry import (
    TrainedModel,
    compare_models,
    delete_model,
    evaluate_model,
    get_model,
    list_models,
)
from pigeonhole.training.runs import (
    INTERRUPTED_MESSAGE,
    TrainConfig,
    cancel_run,
    create_run,
    execute_run,
    fail_interrupted_runs,
    get_run,
    list_runs,
    train,
)
from pigeonhole.training.scoring import Decision, score_outputs
from pigeonhole.workspace import Workspace

TEST_IMAGES = PER_CLASS["test"] * len(CLASS_NAMES)


@pytest.fixture(scope="module")
def shapes(shared_workspace: Workspace) -> TrainedModel:
    """Model 1 of project ``shapes``, trained in fast mode."""
    project = drawn_project(shared_workspace, "shapes")
    return train(project)


@pytest.fixture
def shapes_project(shapes: TrainedModel, shared_workspace: Workspace) -> Project:
    return shared_workspace.project(shapes.project)


def cache_size(workspace: Workspace) -> int:
    with EmbeddingCache.for_model(
        workspace.root, "mobilenet_v2", ModelInput.for_backbone("mobilenet_v2")
    ) as cache:
        return len(cache)


@pytest.mark.slow
def test_fast_model_learns_and_is_packaged(shapes: TrainedModel) -> None:
    assert shapes.model_id == "shapes/1"
    assert shapes.metrics["images"] == TEST_IMAGES
    assert shapes.metrics["accuracy"] >= 0.8  # chance is 1/3
    package = ModelPackage.load(shapes.path)  # verifies the graph's sha256
    metadata = package.metadata
    assert metadata.class_names == CLASS_NAMES
    assert metadata.dataset_version["number"] == 1
    assert len(metadata.dataset_version["manifest_hash"]) == 64
    assert metadata.backbone["weights_sha256"].startswith("b03531047ffa")
    assert metadata.ood["kind"] == "knn"
    assert package.load_ood_reference().shape == (30, 1280)  # type: ignore[union-attr]
    for name in (
        "report.json",
        "model_card.md",
        "plots/confusion_matrix.png",
        "plots/reliability.png",
        "plots/training_curves.png",
    ):
        assert (shapes.path / name).is_file(), name
    report = json.loads((shapes.path / "report.json").read_text())
    assert report["split"] == "test"
    assert report["metrics"]["count"] == TEST_IMAGES
    assert "## Known weaknesses" in (shapes.path / "model_card.md").read_text()


@pytest.mark.slow
def test_exported_graph_reproduces_the_recorded_metrics(
    shapes: TrainedModel, shapes_project: Project
) -> None:
    project = shapes_project

    evaluation = evaluate_model(project, 1)

    assert evaluation.split == "test"
    assert evaluation.scores.summary["accuracy"] == shapes.metrics["accuracy"]
    assert evaluation.scores.summary["ece_after"] == pytest.approx(
        shapes.metrics["ece_after"], abs=1e-4
    )


@pytest.mark.slow
def test_run_records_progress_and_history(shapes_project: Project) -> None:
    run = list_runs(shapes_project)[-1]  # the oldest: model 1

    assert run.status == "succeeded"
    assert run.model_number == 1
    assert run.phase == "export" and run.done == run.total == 1
    assert [row["phase"] for row in run.history] == [1, 2, 3, 4, 5]
    assert run.started_at is not None and run.finished_at is not None
    assert json.loads(json.dumps(run.to_dict()))["status"] == "succeeded"


@pytest.mark.slow
def test_retrain_embeds_only_new_images_and_numbers_models(
    shapes_project: Project,
) -> None:
    project = shapes_project
    workspace = project.workspace
    before = cache_size(workspace)
    add_pictures(project, seed=7, per_class={"train": 2})
    project.create_version()

    second = train(project)

    assert cache_size(workspace) == before + 2 * len(CLASS_NAMES)
    assert second.number == 2 and second.version == 2
    assert [model.number for model in list_models(project)] == [1, 2]
    assert set(compare_models(project, [1, 2])["accuracy"]) == {1, 2}

    delete_model(project, 2)

    assert not second.path.exists()
    assert [model.number for model in list_models(project)] == [1]
    with pytest.raises(NotFoundError, match="has no model 2"):
        get_model(project, 2)
    assert next_model_number(project) == 3  # a deleted number is not reused


@pytest.mark.slow
def test_model_evaluates_on_another_version(
    shapes: TrainedModel, shapes_project: Project
) -> None:
    project = shapes_project
    versions = [version.number for version in project.versions()]

    evaluation = evaluate_model(project, 1, versions[-1], all_images=True)

    assert evaluation.version == versions[-1]
    assert evaluation.split == "all"
    assert evaluation.scores.summary["images"] == len(
        [item for item in project.version().items() if item.copy == 0]
    )


@pytest.mark.slow
def test_cancel_during_a_run_ends_it_cancelled(shared_workspace: Workspace) -> None:
    project = drawn_project(shared_workspace, "cancelled")
    run = create_run(project)

    def cancel_on_first_report(phase: str, done: int, total: int | None) -> None:
        cancel_run(shared_workspace, run.id)

    finished = execute_run(shared_workspace, run.id, cancel_on_first_report)

    assert finished.status == "cancelled"
    assert finished.cancel_requested and finished.model_number is None
    assert "cancelled" in finished.message
    assert list_models(project) == []


@pytest.mark.slow
def test_multi_label_model_gets_a_threshold_per_class(
    shared_workspace: Workspace,
) -> None:
    project = shared_workspace.create_project(
        "mixed", type="multi-label", classes=CLASS_NAMES
    )
    seed = 0
    for split, count in PER_CLASS.items():
        for first in range(3):
            for second in range(3):
                for _ in range(max(1, count // 3)):
                    seed += 1
                    labels = {CLASS_NAMES[first], CLASS_NAMES[second]}
                    project.add_image(
                        two_colour_picture(seed, first, second),
                        labels=sorted(labels),
                        split=split,
                    )
    project.create_version()

    model = train(project, config=TrainConfig(target_precision=None))

    assert len(model.metadata.class_thresholds) == len(CLASS_NAMES)
    assert all(0 < value < 1 for value in model.metadata.class_thresholds)
    assert model.metrics["micro_f1"] > 0.7
    assert model.metadata.rejection_threshold == 0.0


@pytest.mark.slow
def test_fine_tune_run_makes_a_model(shared_workspace: Workspace) -> None:
    project = drawn_project(shared_workspace, "tuned")
    config = TrainConfig(
        mode="fine-tune",
        fine_tune={"epochs": 1, "image_size": 64, "batch_size": 8},
    )

    model = train(project, config=config)

    assert model.mode == "fine-tune"
    assert model.metadata.input["crop"] == [64, 64]
    assert model.metadata.training["best_epoch"] == 1
    assert [row["epoch"] for row in list_runs(project)[0].history] == [1]
    assert not (shared_workspace.root / "runs" / str(model.run_id)).exists()


def test_run_without_a_valid_split_ends_failed(workspace: Workspace) -> None:
    project = workspace.create_project("flat", classes=["a", "b"])
    for seed in range(4):
        project.add_image(
            two_colour_picture(seed, 0, 0), labels=["ab"[seed % 2]], split="train"
        )
    project.create_version()
    run = create_run(project)

    finished = execute_run(workspace, run.id)

    assert finished.status == "failed"
    assert "has no valid images" in finished.message
    assert finished.finished_at is not None
    with pytest.raises(ValidationError, match="has no valid images"):
        train(project)


def test_interrupted_runs_are_marked_failed(workspace: Workspace) -> None:
    project = workspace.create_project("queued", classes=["a"])
    project.add_image(two_colour_picture(1, 0, 0), labels=["a"], split="train")
    project.create_version()
    run = create_run(project)

    assert fail_interrupted_runs(workspace) == 1

    found = get_run(workspace, run.id)
    assert (found.status, found.message) == ("failed", INTERRUPTED_MESSAGE)
    assert fail_interrupted_runs(workspace) == 0


def test_queued_run_is_cancelled_at_once(workspace: Workspace) -> None:
    project = workspace.create_project("waiting", classes=["a"])
    project.add_image(two_colour_picture(2, 0, 0), labels=["a"], split="train")
    project.create_version()
    run = create_run(project)

    cancelled = cancel_run(workspace, run.id)

    assert cancelled.status == "cancelled"
    with pytest.raises(Exception, match="only a queued run can be executed"):
        execute_run(workspace, run.id)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "slow"}, "mode='slow' is not one of"),
        ({"backbone": "resnet9000"}, "resnet9000"),
        ({"rejection_precision": 0.0}, "rejection_precision=0.0"),
        ({"mode": "fine-tune", "fine_tune": {"epoch": 3}}, "unknown fine-tune"),
        ({"fine_tune": {"epochs": 3}}, "fast mode does not take the setting"),
        ({"fine_tune": {"head": "tree"}}, "head kind='tree'"),
    ],
    ids=["mode", "backbone", "rejection", "fine-tune-key", "fast-key", "head"],
)
def test_bad_train_config_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_train_config_round_trips() -> None:
    config = TrainConfig(mode="fine-tune", seed=3, fine_tune={"epochs": 2})

    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValidationError, match="unknown training setting"):
        TrainConfig.from_dict({"epochs": 2})


def overconfident(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model right 70% of the time that is always sure of itself."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    guess = np.where(rng.random(count) < 0.7, labels, (labels + 1) % 3)
    logits = np.eye(3)[guess] * 8.0 + rng.normal(0, 0.5, (count, 3))
    return logits, labels


def test_temperature_lowers_calibration_error() -> None:
    version = SimpleNamespace(class_names=list(CLASS_NAMES))
    valid_logits, valid_labels = overconfident(1, 300)
    test_logits, test_labels = overconfident(2, 300)
    valid = _Outputs(items=[], labels=valid_labels, logits=valid_logits)

    decision, _extra = _calibrate(version, TrainConfig(), valid, False)  # type: ignore[arg-type]
    scores = score_outputs(test_logits, test_labels, decision)

    assert decision.temperature > 2.0
    assert scores.summary["ece_after"] < scores.summary["ece_before"] / 2


def test_rejection_threshold_rejects_unsure_answers() -> None:
    version = SimpleNamespace(class_names=list(CLASS_NAMES))
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 400)
    sure = rng.random(400) < 0.6
    # Sure answers are right; unsure ones are right a third of the time.
    guess = np.where(sure, labels, rng.integers(0, 3, 400))
    logits = np.eye(3)[guess] * np.where(sure, 5.0, 0.8)[:, None]
    valid = _Outputs(items=[], labels=labels[:200], logits=logits[:200])

    decision, _extra = _calibrate(
        version, TrainConfig(rejection_precision=0.95), valid, False
    )  # type: ignore[arg-type]
    scores = score_outputs(logits[200:], labels[200:], decision)

    assert decision.rejection_threshold > 0.5
    assert scores.rejection is not None
    assert 0.4 < scores.rejection["coverage"] < 0.8
    assert scores.rejection["accuracy"] >= 0.95


def test_scores_without_images_are_empty() -> None:
    decision = Decision(tuple(CLASS_NAMES), multi_label=False)

    scores = score_outputs(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), decision)

    assert scores.summary == {"images": 0}

"""Tests for the predictor: same answers as the torch model, thresholds, inputs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelgen import (
    CLASS_NAMES,
    MODEL_INPUT,
    encode,
    metadata,
    picture,
    torch_outputs,
)
from pigeonhole.errors import CorruptImageError, ValidationError
from pigeonhole.images import decode
from pigeonhole.inference import predictor as predictor_module
from pigeonhole.inference.decode import ModelPixels
from pigeonhole.inference.predictor import Prediction, Predictor
from pigeonhole.models.package import (
    ModelPackage,
    calibrated,
    free_cores,
    write_package,
)
from pigeonhole.preprocessing import Preprocessing, ResizeMode
from pigeonhole.training.modules import Classifier

TEMPERATURE = 1.5  # as in conftest.py


@pytest.fixture(scope="module")
def pictures() -> list[tuple[Image.Image, int]]:
    """Unseen pictures with their class ids."""
    return [(picture(2000 + i, i % 3), i % 3) for i in range(9)]


def with_metadata(package: ModelPackage, **changes: object) -> Predictor:
    changed = dataclasses.replace(package.metadata, **changes)  # type: ignore[arg-type]
    return Predictor.load(ModelPackage(package.path, changed))


def training_path_scores(classifier: Classifier, data: list[bytes]) -> np.ndarray:
    """Confidences of the torch model on pixels made the way training makes them."""
    batch = MODEL_INPUT.batch(Preprocessing().apply(decode(item)) for item in data)
    logits, _ = torch_outputs(classifier, batch)
    return calibrated(logits, TEMPERATURE, multi_label=False)


def test_inference_path_imports_no_torch(package: ModelPackage) -> None:
    code = (
        "import sys\n"
        "from pigeonhole.inference.predictor import Predictor\n"
        "import pigeonhole.inference.batch, pigeonhole.inference.fetch\n"
        "import pigeonhole.inference.distributed\n"
        "import pigeonhole.cli.predict\n"
        f"predictor = Predictor.load({str(package.path)!r})\n"
        "predictor.predict(b'' + open(sys.argv[1], 'rb').read())\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    image = package.path.parent / "probe.png"
    picture(1, 1).save(image)

    result = subprocess.run(
        [sys.executable, "-c", code, str(image)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr


def test_png_predictions_match_torch(
    classifier: Classifier,
    predictor: Predictor,
    pictures: list[tuple[Image.Image, int]],
) -> None:
    data = [encode(image, "PNG") for image, _ in pictures]
    expected = training_path_scores(classifier, data)

    predictions = predictor.predict(data)

    for prediction, scores in zip(predictions, expected, strict=True):
        ranked = [score.class_id for score in prediction.classes]
        confidences = [score.confidence for score in prediction.classes]
        assert ranked == list(np.argsort(-scores, kind="stable"))
        assert np.allclose(confidences, scores[ranked], rtol=0, atol=1e-4)
        assert prediction.top == CLASS_NAMES[int(scores.argmax())]
        assert prediction.predicted_classes == [prediction.top]


def test_png_pixels_equal_the_training_path(
    predictor: Predictor, pictures: list[tuple[Image.Image, int]]
) -> None:
    for image, _ in pictures:
        data = encode(image, "PNG")
        expected = MODEL_INPUT.prepare(Preprocessing().apply(decode(data)))

        assert np.array_equal(predictor.pixels.from_bytes(data).pixels, expected)


@pytest.mark.parametrize(
    "preprocessing",
    [
        Preprocessing(),
        Preprocessing(resize=(200, 120), resize_mode=ResizeMode.FIT),
        Preprocessing(resize=(96, 96), resize_mode=ResizeMode.CENTER_CROP),
        Preprocessing(resize=(300, 200), grayscale=True),
    ],
    ids=["none", "fit", "center-crop", "grey"],
)
def test_jpeg_draft_decoding_stays_close(preprocessing: Preprocessing) -> None:
    full = ModelPixels(preprocessing, MODEL_INPUT.size, draft=False)
    fast = ModelPixels(preprocessing, MODEL_INPUT.size)
    data = encode(picture(7, 2, size=(1280, 960)), "JPEG", quality=90)

    exact, drafted = full.from_bytes(data), fast.from_bytes(data)
    difference = np.abs(exact.pixels.astype(int) - drafted.pixels.astype(int))

    assert drafted.pixels.shape == exact.pixels.shape == (128, 160, 3)
    assert (drafted.width, drafted.height) == (1280, 960)
    assert 0 < difference.mean() < 2.0


def test_jpeg_draft_keeps_exif_orientation() -> None:
    image = picture(8, 0, size=(960, 640))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to show
    data = encode(image, "JPEG", quality=90, exif=exif)
    full = ModelPixels(Preprocessing(), MODEL_INPUT.size, draft=False)
    fast = ModelPixels(Preprocessing(), MODEL_INPUT.size)

    exact, drafted = full.from_bytes(data), fast.from_bytes(data)
    difference = np.abs(exact.pixels.astype(int) - drafted.pixels.astype(int))

    assert (drafted.width, drafted.height) == (640, 960)
    assert difference.mean() < 2.0


def test_rejection_threshold_gives_no_result(
    package: ModelPackage, predictor: Predictor
) -> None:
    data = encode(picture(4000, 1), "PNG")
    answered = predictor.predict(data)
    strict = with_metadata(package, rejection_threshold=answered.confidence + 1e-6)

    rejected = strict.predict(data)
    overridden = strict.predict(data, confidence=answered.confidence - 1e-6)
    caller_strict = predictor.predict(data, confidence=answered.confidence + 1e-6)

    assert answered.top in CLASS_NAMES and not answered.rejected
    assert rejected.top is None and rejected.predicted_classes == []
    assert rejected.rejected and rejected.confidence == answered.confidence
    assert rejected.classes == answered.classes
    assert overridden.top == answered.top
    assert caller_strict.top is None and caller_strict.rejected


def test_multi_label_thresholds_pick_predicted_classes(
    classifier: Classifier, package: ModelPackage
) -> None:
    data = encode(picture(4001, 2), "PNG")
    logits, _ = torch_outputs(classifier, MODEL_INPUT.batch([decode(data)]))
    scores = calibrated(logits, TEMPERATURE, multi_label=True)[0]
    # Just below the scores of red and blue, just above green's.
    thresholds = [scores[0] - 1e-3, min(1.0, scores[1] + 1e-3), scores[2] - 1e-3]
    multi = with_metadata(
        package, project_type="multi-label", class_thresholds=tuple(thresholds)
    )
    ranked = [CLASS_NAMES[i] for i in np.argsort(-scores, kind="stable")]

    prediction = multi.predict(data)
    everything = multi.predict(data, confidence=0.0)

    assert prediction.predicted_classes == [c for c in ranked if c != "green"]
    assert prediction.top == prediction.predicted_classes[0]
    assert not prediction.rejected
    assert np.isclose(prediction.confidence, scores.max(), atol=1e-4)
    assert everything.predicted_classes == ranked


def test_batch_and_single_calls_agree(
    predictor: Predictor,
    pictures: list[tuple[Image.Image, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(predictor_module, "BATCH_SIZE", 4)  # 9 images: 3 chunks
    data = [encode(image, "PNG") for image, _ in pictures]

    batch = predictor.predict(data)
    singles = [predictor.predict(item) for item in data]

    assert len(batch) == len(singles) == 9
    for together, alone in zip(batch, singles, strict=True):
        assert together.top == alone.top
        assert np.allclose(
            [score.confidence for score in together.classes],
            [score.confidence for score in alone.classes],
            atol=1e-5,
        )


def test_every_input_kind_gives_the_same_answer(
    predictor: Predictor, tmp_path: Path
) -> None:
    image = picture(4002, 0)
    path = tmp_path / "picture.png"
    image.save(path)
    inputs = [str(path), path, path.read_bytes(), image, np.asarray(image)]

    predictions = predictor.predict(inputs)

    assert len({prediction.top for prediction in predictions}) == 1
    confidences = [prediction.confidence for prediction in predictions]
    assert np.allclose(confidences, confidences[0], atol=1e-6)
    assert {(p.width, p.height) for p in predictions} == {image.size}


def test_top_k_and_fields(predictor: Predictor) -> None:
    prediction = predictor.predict(encode(picture(4003, 1), "PNG"), top_k=2)

    assert isinstance(prediction, Prediction)
    assert prediction.classes[0].name == prediction.top
    assert prediction.classes[0].confidence == prediction.confidence
    assert prediction.classes[0].confidence >= prediction.classes[1].confidence
    assert len(prediction.classes) == 2
    assert prediction.ood_score is None and prediction.prediction_set is None
    assert prediction.time_ms > 0
    assert prediction.to_dict()["classes"][0]["name"] == prediction.top


def test_conformal_prediction_set(package: ModelPackage, predictor: Predictor) -> None:
    data = encode(picture(4004, 0), "PNG")
    answer = predictor.predict(data)
    # Sets hold every class with confidence >= 1 - quantile.
    quantile = 1.0 - (answer.confidence - 1e-6)
    narrow = with_metadata(package, conformal_quantile=quantile, conformal_coverage=0.9)
    wide = with_metadata(package, conformal_quantile=1.0, conformal_coverage=0.9)

    confident = narrow.predict(data, coverage=0.9)
    everything = wide.predict(data, coverage=0.9)

    assert confident.prediction_set == [answer.top]
    assert everything.prediction_set == [score.name for score in everything.classes]
    assert len(everything.prediction_set) == 3
    with pytest.raises(ValidationError, match="calibrated for; ask for that"):
        narrow.predict(data, coverage=0.8)
    with pytest.raises(ValidationError, match="no conformal calibration"):
        predictor.predict(data, coverage=0.9)


def test_out_of_distribution_scores(
    classifier: Classifier, package: ModelPackage, tmp_path: Path
) -> None:
    known = [picture(5000 + i, i % 3) for i in range(3)]
    _, reference = torch_outputs(classifier, MODEL_INPUT.batch(known))
    folder = tmp_path / "shapes-ood"
    write_package(
        folder,
        classifier,
        metadata(temperature=TEMPERATURE, ood={"kind": "knn", "threshold": 0.01}),
        input_size=MODEL_INPUT.size,
        ood_reference=reference,
        parity_batch=MODEL_INPUT.batch(known),
    )
    with_ood = Predictor.load(folder)
    stranger = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    )

    seen, unseen = with_ood.predict([known[0], stranger])
    plain = Predictor.load(package).predict(known[0])

    assert seen.ood_score is not None and seen.ood_score < 1e-4
    assert seen.top == plain.top is not None
    assert unseen.ood_score is not None and unseen.ood_score > 0.01
    assert unseen.top is None and unseen.rejected


def test_energy_scores_need_no_reference(package: ModelPackage) -> None:
    energy = with_metadata(package, ood={"kind": "energy", "threshold": 1e9})

    prediction = energy.predict(picture(4005, 1))
    plain = Predictor.load(package).predict(picture(4005, 1))

    assert prediction.ood_score is not None and prediction.top == plain.top


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"top_k": 0}, "top_k=0"),
        ({"confidence": 1.5}, r"confidence=1\.5"),
        ({"coverage": 1.0}, r"coverage=1\.0 must be between"),
    ],
    ids=["top-k", "confidence", "coverage"],
)
def test_bad_arguments_are_refused(
    predictor: Predictor, arguments: dict, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        predictor.predict(picture(1, 1), **arguments)


def test_bad_inputs_are_named(predictor: Predictor) -> None:
    good = encode(picture(4006, 0), "PNG")

    with pytest.raises(ValidationError, match="scheme 'ftp' is not accepted"):
        predictor.predict("ftp://example.com/cat.jpg")
    with pytest.raises(CorruptImageError, match=r"inputs\[1\]"):
        predictor.predict([good, good[:200]])
    with pytest.raises(ValidationError, match=r"inputs\[0\]: array is float64"):
        predictor.predict([np.zeros((8, 8, 3))])
    with pytest.raises(ValidationError, match="cannot predict a int"):
        predictor.predict(42)  # type: ignore[call-overload]


def test_session_uses_free_cores_without_spinning(package: ModelPackage) -> None:
    default = Predictor.load(package)
    one = Predictor.load(package, threads=1)

    for predictor, threads in ((default, free_cores()), (one, 1)):
        options = predictor._session.get_session_options()
        assert options.intra_op_num_threads == threads
        spinning = options.get_session_config_entry("session.intra_op.allow_spinning")
        assert spinning == "0"

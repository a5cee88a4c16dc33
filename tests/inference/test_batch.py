"""Tests for streamed prediction and URL inputs, with a real server on loopback."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelgen import encode, picture
from pigeonhole.errors import ValidationError
from pigeonhole.inference.batch import predict_stream
from pigeonhole.inference.fetch import UrlLimits
from pigeonhole.inference.predictor import Predictor
from pigeonhole.models.package import ModelPackage


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder and the base URL of a real HTTP server serving it on 127.0.0.1."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_inputs_are_fetched_within_the_limits(
    package: ModelPackage, predictor: Predictor, served: tuple[Path, str]
) -> None:
    folder, base = served
    data = encode(picture(6000, 1, size=(320, 240)), "JPEG", quality=90)
    (folder / "cat.jpg").write_bytes(data)
    local = Predictor.load(package, urls=UrlLimits(allow_private=True))
    refusing = Predictor.load(package, urls=None)

    fetched = local.predict(f"{base}/cat.jpg")

    assert fetched.top == predictor.predict(data).top
    assert fetched.confidence == pytest.approx(predictor.predict(data).confidence)
    assert (fetched.width, fetched.height) == (320, 240)
    with pytest.raises(ValidationError, match="a loopback address"):
        predictor.predict(f"{base}/cat.jpg")
    with pytest.raises(ValidationError, match="this predictor fetches none"):
        refusing.predict(f"{base}/cat.jpg")


def test_stream_reports_bad_images_and_goes_on(
    predictor: Predictor, tmp_path: Path
) -> None:
    good = [encode(picture(6100 + i, i % 3), "PNG") for i in range(7)]
    corrupt = good[0][:100]
    missing = tmp_path / "missing.jpg"
    inputs: list = [*good[:3], corrupt, missing, *good[3:], "ftp://host/a.jpg"]

    outcomes = list(predict_stream(predictor, iter(inputs), batch_size=3, workers=2))

    assert [outcome.index for outcome in outcomes] == list(range(len(inputs)))
    failed = {outcome.index: outcome for outcome in outcomes if not outcome.ok}
    assert sorted(failed) == [3, 4, 9]
    assert failed[3].source == "inputs[3]" and "inputs[3]" in (failed[3].error or "")
    assert failed[4].source == str(missing) and "cannot be read" in (
        failed[4].error or ""
    )
    assert "scheme 'ftp'" in (failed[9].error or "")
    predicted = [outcome.prediction for outcome in outcomes if outcome.ok]
    expected = predictor.predict(good)
    for streamed, direct in zip(predicted, expected, strict=True):
        assert streamed is not None
        assert streamed.top == direct.top
        assert np.isclose(streamed.confidence, direct.confidence, atol=1e-5)


def test_stream_applies_options(predictor: Predictor) -> None:
    data = [encode(picture(6200 + i, i % 3), "PNG") for i in range(4)]

    outcomes = list(predict_stream(predictor, data, top_k=1, confidence=1.0))

    assert all(outcome.prediction is not None for outcome in outcomes)
    assert all(len(outcome.prediction.classes) == 1 for outcome in outcomes)  # type: ignore[union-attr]
    assert all(outcome.prediction.rejected for outcome in outcomes)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"workers": 0}, "workers=0"),
        ({"top_k": 0}, "top_k=0"),
    ],
    ids=["batch-size", "workers", "top-k"],
)
def test_stream_refuses_bad_options_before_reading(
    predictor: Predictor, arguments: dict, message: str
) -> None:
    def never() -> Iterator[bytes]:
        raise AssertionError("an input was read")
        yield b""  # pragma: no cover

    with pytest.raises(ValidationError, match=message):
        next(predict_stream(predictor, never(), **arguments))

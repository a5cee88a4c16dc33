"""A real model package shared by the inference tests, built once per session."""

from __future__ import annotations

import pytest

from modelgen import build_classifier, write_shapes_package
from pigeonhole.inference.predictor import Predictor
from pigeonhole.models.package import ModelPackage
from pigeonhole.training.modules import Classifier

TEMPERATURE = 1.5


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return build_classifier()


@pytest.fixture(scope="session")
def package(
    classifier: Classifier, tmp_path_factory: pytest.TempPathFactory
) -> ModelPackage:
    folder = tmp_path_factory.mktemp("models") / "shapes-1"
    return write_shapes_package(folder, classifier, temperature=TEMPERATURE)


@pytest.fixture(scope="session")
def predictor(package: ModelPackage) -> Predictor:
    return Predictor.load(package.path)

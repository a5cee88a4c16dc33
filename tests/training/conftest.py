"""A workspace shared by the training tests, with projects of drawn pictures.

Training tests share one workspace per module so that the backbone's embedding
graph is exported once and the embedding cache is shared, as in real use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pigeonhole.models.weights import fetch_weights
from pigeonhole.workspace import Workspace


@pytest.fixture(scope="session")
def weights() -> None:
    """The real MobileNetV2 weights in torch's cache (fetched once, checked)."""
    fetch_weights("mobilenet_v2")


@pytest.fixture(scope="module")
def shared_workspace(
    tmp_path_factory: pytest.TempPathFactory, weights: None
) -> Iterator[Workspace]:
    workspace = Workspace.init(tmp_path_factory.mktemp("training") / "workspace")
    yield workspace
    workspace.close()

"""Out-of-distribution scores: how far an image is from what the model was trained on.

The detector is described by ``model.json``'s ``ood`` object, whose ``kind`` is one of:

- ``"knn"``: ``1 - cosine similarity`` between the image's embedding and its ``k``-th
  nearest reference embedding (``ood_reference.npy``, usually the training images);
  settings ``k`` (default 1) and ``threshold``.
- ``"energy"``: ``-logsumexp(logits)``, needing no reference; setting ``threshold``.

Higher scores are further out; a score above ``threshold`` makes the prediction
"no result".

Example:
    >>> detector = OutOfDistribution.from_package(package)  # doctest: +SKIP
    >>> detector.scores(logits, embeddings)  # doctest: +SKIP
    array([0.08, 0.61])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pigeonhole.models.package import ModelPackage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutOfDistribution:
    """A model's out-of-distribution detector.

    Attributes:
        kind: ``"knn"`` or ``"energy"``.
        threshold: Scores above this mean "no result"; None never rejects.
        reference: Unit-length reference embeddings ``[M, D]`` (``knn`` only).
        k: Which nearest reference embedding the ``knn`` score uses.
    """

    kind: str
    threshold: float | None
    reference: np.ndarray | None
    k: int

    @classmethod
    def from_package(cls, package: ModelPackage) -> OutOfDistribution | None:
        """The detector ``package.metadata.ood`` describes, or None without one.

        An unknown kind is logged as a warning and gives None: the model still
        predicts, without OOD scores.
        """
        ood = package.metadata.ood
        kind = ood.get("kind")
        if not kind:
            return None
        threshold = ood.get("threshold")
        threshold = None if threshold is None else float(threshold)
        if kind == "energy":
            return cls(kind, threshold, None, 1)
        reference = package.load_ood_reference()
        if kind == "knn" and reference is not None and reference.ndim == 2:
            norms = np.linalg.norm(reference, axis=1, keepdims=True)
            unit = (reference / np.maximum(norms, 1e-12)).astype(np.float32)
            k = max(1, min(int(ood.get("k", 1)), len(unit)))
            return cls(kind, threshold, unit, k)
        logger.warning(
            "model %s has an out-of-distribution detector %r this version cannot run "
            "(known: knn with ood_reference.npy, energy); predictions carry no OOD "
            "score: upgrade Pigeonhole or export the model again",
            package.metadata.model_id,
            kind,
        )
        return None

    def scores(self, logits: np.ndarray, embeddings: np.ndarray | None) -> np.ndarray:
        """Scores ``[N]`` from the graph's outputs; higher is further out."""
        if self.kind == "energy" or self.reference is None or embeddings is None:
            top = logits.max(axis=1)
            shifted = np.exp(logits - top[:, None]).sum(axis=1)
            return np.asarray(-(top + np.log(shifted)), dtype=np.float64)
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        unit = embeddings / np.maximum(norms, 1e-12)
        similarity = unit @ self.reference.T
        kth = np.partition(-similarity, self.k - 1, axis=1)[:, self.k - 1]
        return np.asarray(1.0 + kth, dtype=np.float64)

    def rejects(self, score: float | None) -> bool:
        """Whether ``score`` is above the threshold."""
        return (
            self.threshold is not None and score is not None and score > self.threshold
        )

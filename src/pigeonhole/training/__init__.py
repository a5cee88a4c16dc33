"""Training: from a dataset version to a model.

The fast mode embeds every image once with a frozen backbone
(:mod:`~pigeonhole.training.embeddings`, cached per backbone, weights, input size and
image) and fits a small head on the embeddings (:mod:`~pigeonhole.training.heads`).
:mod:`~pigeonhole.training.inputs` is the model input transform shared with
prediction and imports no torch; :mod:`~pigeonhole.training.modules` holds the torch
modules that the exported graph is made of.

Long work checks a ``cancelled()`` callback between batches and raises
:class:`RunCancelled` when it turns true.
"""

from __future__ import annotations


class RunCancelled(Exception):
    """A run stopped because its ``cancelled()`` callback returned True.

    Not a `pigeonhole.errors.PigeonholeError`: cancelling is what the user asked for,
    not a failure, and the worker that runs training records it as such.
    """

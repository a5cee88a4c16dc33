"""Prediction with an exported model: ONNX Runtime and numpy, no torch.

`Predictor` loads a model package (`pigeonhole.models.package`), decodes images
through the safe path with the model's own preprocessing (`decode`) and answers
ranked classes with calibrated confidences, or no result below the threshold.
Nothing on this path imports torch, so a serving install stays small and starts fast.

Example:
    >>> from pigeonhole.inference.predictor import Predictor
    >>> predictor = Predictor.load("models/bananas-3")  # doctest: +SKIP
    >>> predictor.predict("photo.jpg").top  # doctest: +SKIP
    'ripe'
"""

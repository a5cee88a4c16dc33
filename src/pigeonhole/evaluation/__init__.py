"""Measuring a trained model on held-out images, in plain numpy.

* :mod:`~pigeonhole.evaluation.metrics`: single-label and multi-label metrics, the
  effect of a rejection threshold, and AUROC for telling unknown images apart.
* :mod:`~pigeonhole.evaluation.calibration`: expected calibration error, reliability
  curves and temperature scaling.
* :mod:`~pigeonhole.evaluation.thresholds`: per-class thresholds, the rejection
  threshold and split-conformal prediction sets, all chosen on the valid split.
* :mod:`~pigeonhole.evaluation.plots`: confusion matrix, reliability and training
  curves as PNG files.
* :mod:`~pigeonhole.evaluation.report`: a Markdown model card.

Settings are chosen on the valid split and only measured on the test split; nothing
here imports torch, so the inference path can use it.
"""

"""A trained model as one self-describing folder, and how it is written and checked.

The layout::

    <model>/
    ├── model.onnx         input ``image`` uint8 [N, H, W, 3]; outputs ``logits``
    │                      [N, C] and ``embedding`` [N, D]; N is dynamic
    ├── model.json         `ModelMetadata`: class names, preprocessing, calibration
    ├── ood_reference.npy  optional: reference embeddings for out-of-distribution
    ├── plots/             optional: evaluation figures
    ├── report.json        optional: the evaluation report
    └── model_card.md      optional: the human-readable summary

The graph takes raw RGB pixels, so normalisation travels inside the model and a
predictor only has to decode and resize (`pigeonhole.inference`). `write_package`
exports the graph, proves that ONNX Runtime agrees with the torch model on real
images (`parity_check`), records the graph's sha256 in ``model.json`` and moves the
finished folder into place in one rename: a killed export leaves at most a hidden
``.<name>.partial-*`` folder beside the target, never a half package under its name.

Errors raised here and in `pigeonhole.models.metadata`, below `PigeonholeError`::

    PigeonholeError
    └── ModelPackageError    a package that is missing files, corrupt or altered
        └── ParityError      ONNX Runtime and torch disagree beyond the tolerance

Importing this module does not import torch; only the export functions do.

Example:
    >>> from pigeonhole.models.package import ModelPackage
    >>> package = ModelPackage.load("models/bananas-3")  # doctest: +SKIP
    >>> package.metadata.class_names  # doctest: +SKIP
    ('green', 'ripe', 'overripe')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pigeonhole.errors import ConflictError, NotFoundError, ValidationError
from pigeonhole.models.metadata import (
    FORMAT_VERSION,
    METADATA_FILE,
    ModelMetadata,
    ModelPackageError,
    read_metadata,
)

if TYPE_CHECKING:
    import onnxruntime
    from torch import nn

__all__ = [
    "FORMAT_VERSION",
    "ModelMetadata",
    "ModelPackage",
    "ModelPackageError",
    "ParityError",
    "ParityResult",
    "calibrated",
    "create_session",
    "export_onnx",
    "parity_check",
    "write_package",
]

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
OOD_REFERENCE_FILE = "ood_reference.npy"
PLOTS_DIR = "plots"
REPORT_FILE = "report.json"
CARD_FILE = "model_card.md"

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "embedding")

_CHUNK_BYTES = 1 << 20


class ParityError(ModelPackageError):
    """The exported graph does not reproduce the torch model within the tolerance."""

    code = "parity_failed"


@dataclass(frozen=True)
class ParityResult:
    """How closely ONNX Runtime reproduced the torch model on a batch.

    Attributes:
        max_abs_diff: Largest absolute difference between calibrated confidences.
        top1_agreement: Fraction of images whose top class is the same.
        embedding_max_abs_diff: Largest absolute difference between embeddings.
        atol: The tolerance on ``max_abs_diff``.
        batch_size: Number of images compared.
    """

    max_abs_diff: float
    top1_agreement: float
    embedding_max_abs_diff: float
    atol: float
    batch_size: int


@dataclass(frozen=True)
class ModelPackage:
    """A model folder on disk with its parsed metadata.

    Attributes:
        path: The package folder.
        metadata: The contents of ``model.json``.
    """

    path: Path
    metadata: ModelMetadata

    @property
    def onnx_path(self) -> Path:
        """The ONNX graph."""
        return self.path / ONNX_FILE

    @property
    def ood_reference_path(self) -> Path | None:
        """The reference embeddings for out-of-distribution scores, if exported."""
        path = self.path / OOD_REFERENCE_FILE
        return path if path.is_file() else None

    @classmethod
    def load(cls, folder: str | Path, *, verify: bool = True) -> ModelPackage:
        """Opens a package folder and checks that it is whole.

        Args:
            folder: The package folder.
            verify: Check ``model.onnx`` against the sha256 in ``model.json``.

        Raises:
            NotFoundError: The folder does not exist.
            ModelPackageError: A required file is missing, ``model.json`` is not
                valid, or ``model.onnx`` does not match its recorded sha256.
        """
        path = Path(folder)
        if not path.is_dir():
            raise NotFoundError(f"model folder {str(path)!r} does not exist")
        metadata = read_metadata(path / METADATA_FILE)
        onnx_path = path / ONNX_FILE
        if not onnx_path.is_file():
            raise ModelPackageError(
                f"{path}: {ONNX_FILE} is missing; the package is incomplete, "
                "export the model again"
            )
        if verify:
            actual = file_sha256(onnx_path)
            if actual != metadata.onnx_sha256:
                raise ModelPackageError(
                    f"{onnx_path}: sha256 {actual} does not match "
                    f"{metadata.onnx_sha256!r} recorded in {METADATA_FILE}; the graph "
                    "was changed or damaged after export: export the model again"
                )
        return cls(path=path, metadata=metadata)

    def load_ood_reference(self) -> np.ndarray | None:
        """The reference embeddings ``[M, D]``, or None when the package has none."""
        path = self.ood_reference_path
        if path is None:
            return None
        try:
            return np.asarray(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as error:
            raise ModelPackageError(
                f"{path}: cannot be read ({error}); export the model again"
            ) from None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def free_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def create_session(
    onnx_path: Path, *, threads: int | None = None
) -> onnxruntime.InferenceSession:
    """Opens an ONNX Runtime session tuned for low-latency CPU prediction.

    One request at a time uses every free core inside operators; operators run in
    sequence (the graph is a chain, so parallel branches would gain nothing) and
    idle threads sleep rather than spin, so that a server's other work keeps its CPU.

    Args:
        onnx_path: The graph.
        threads: Threads inside an operator; None uses every free core.

    Raises:
        ValidationError: ``threads`` is below 1.
        ModelPackageError: ONNX Runtime cannot load the graph.
    """
    import onnxruntime as ort

    if threads is not None and threads < 1:
        raise ValidationError(f"threads={threads!r} must be 1 or more, or None")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or free_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped failures
        raise ModelPackageError(
            f"{onnx_path}: ONNX Runtime cannot load the graph ({error}); "
            "export the model again"
        ) from None


def calibrated(logits: np.ndarray, temperature: float, multi_label: bool) -> np.ndarray:
    """Calibrated confidences ``[N, C]`` from logits: softmax, or sigmoid per class."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if multi_label:
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * scaled)))  # overflow-free sigmoid
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def export_onnx(
    classifier: nn.Module, path: Path, input_size: tuple[int, int], *, opset: int = 17
) -> None:
    """Exports a classifier to ONNX with a dynamic batch axis.

    Args:
        classifier: Maps uint8 images ``[N, H, W, 3]`` to ``(logits, embedding)``.
            It is exported in eval mode and left in the mode it came in.
        path: Where to write the graph.
        input_size: The model input ``(width, height)``.
        opset: ONNX opset version.

    Raises:
        ModelPackageError: The export fails or the graph fails ONNX's checker.
    """
    import onnx
    import torch

    width, height = input_size
    example = torch.zeros((2, height, width, 3), dtype=torch.uint8)
    was_training = classifier.training
    classifier.eval()
    batch_axis = {0: "batch"}
    try:
        # FIXME: this is the TorchScript-based exporter, deprecated since torch 2.9;
        # the torch.export-based one needs the onnxscript package. Moving over needs
        # onnxscript in the train extra and a parity run on every backbone.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            torch.onnx.export(
                classifier,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                opset_version=opset,
                dynamic_axes={name: batch_axis for name in (INPUT_NAME, *OUTPUT_NAMES)},
                do_constant_folding=True,
                dynamo=False,
            )
        onnx.checker.check_model(str(path), full_check=True)
    except (RuntimeError, ValueError, TypeError, onnx.checker.ValidationError) as error:
        raise ModelPackageError(f"ONNX export to {path} failed: {error}") from error
    finally:
        classifier.train(was_training)
    logger.info("exported %s (opset %d)", path, opset)


def parity_check(
    classifier: nn.Module,
    onnx_path: Path,
    batch_uint8: np.ndarray,
    *,
    temperature: float = 1.0,
    multi_label: bool = False,
    atol: float = 1e-4,
) -> ParityResult:
    """Runs torch and ONNX Runtime on the same images and compares confidences.

    ONNX Runtime runs with the predictor's own session settings, so the check
    covers the graph exactly as it will be served.

    Args:
        classifier: The torch model that was exported.
        onnx_path: The exported graph.
        batch_uint8: Real images as uint8 ``[N, H, W, 3]`` at the model input size.
        temperature: Calibration temperature applied to both.
        multi_label: Compare sigmoid rather than softmax confidences.
        atol: Largest accepted absolute difference of any confidence.

    Returns:
        The differences found.

    Raises:
        ValidationError: ``batch_uint8`` is not a non-empty uint8 ``[N, H, W, 3]``.
        ParityError: A confidence differs by more than ``atol``.
    """
    import torch

    batch = _checked_batch(batch_uint8)
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.no_grad():
            torch_logits, torch_embedding = classifier(torch.from_numpy(batch))
    finally:
        classifier.train(was_training)
    session = create_session(onnx_path)
    onnx_logits, onnx_embedding = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})

    expected = calibrated(torch_logits.numpy(), temperature, multi_label)
    actual = calibrated(onnx_logits, temperature, multi_label)
    result = ParityResult(
        max_abs_diff=float(np.abs(expected - actual).max()),
        top1_agreement=float(np.mean(expected.argmax(1) == actual.argmax(1))),
        embedding_max_abs_diff=float(
            np.abs(torch_embedding.numpy() - onnx_embedding).max()
        ),
        atol=atol,
        batch_size=len(batch),
    )
    logger.info(
        "parity on %d images: max confidence difference %.2e, top-1 agreement %.3f",
        result.batch_size,
        result.max_abs_diff,
        result.top1_agreement,
    )
    # Within atol on every confidence, a top class can only differ where torch's
    # two best are within 2 * atol of each other, so this also pins top-1.
    if not result.max_abs_diff <= atol:
        raise ParityError(
            f"ONNX Runtime differs from torch by {result.max_abs_diff:.3g} in "
            f"confidence (tolerance {atol:g}; top-1 agreement "
            f"{result.top1_agreement:.1%}) on {result.batch_size} images; the graph "
            "is not exported faithfully: the model must compute the same traced as "
            "run eagerly (no Python branches on values) with ONNX-supported operators"
        )
    return result


def write_package(
    folder: str | Path,
    classifier: nn.Module,
    metadata_without_onnx_sha: ModelMetadata,
    *,
    input_size: tuple[int, int],
    ood_reference: np.ndarray | None,
    parity_batch: np.ndarray,
) -> ModelPackage:
    """Exports, checks and writes a complete model package, atomically.

    Everything is written into a hidden folder beside ``folder`` and renamed into
    place only once the parity check passed, so ``folder`` either holds a whole
    package or does not exist.

    Args:
        folder: The package folder to create; it must not exist yet.
        classifier: Maps uint8 images ``[N, H, W, 3]`` to ``(logits, embedding)``.
        metadata_without_onnx_sha: The metadata; its ``onnx_sha256`` is filled in.
        input_size: The model input ``(width, height)``; must match the metadata.
        ood_reference: Reference embeddings ``[M, D]`` to store, or None.
        parity_batch: Real images, uint8 ``[N, H, W, 3]`` at ``input_size``.

    Returns:
        The written package.

    Raises:
        ConflictError: ``folder`` already exists.
        ValidationError: ``input_size`` differs from the metadata's input size.
        ModelPackageError: Export fails, or `ParityError` from the parity check.

    Example:
        >>> package = write_package(
        ...     "models/bananas-3", classifier, metadata,
        ...     input_size=(224, 224), ood_reference=None, parity_batch=images,
        ... )  # doctest: +SKIP
    """
    target = Path(folder)
    if target.exists():
        raise ConflictError(
            f"model folder {str(target)!r} already exists; choose another folder or "
            "delete it first"
        )
    if tuple(input_size) != metadata_without_onnx_sha.input_size:
        raise ValidationError(
            f"input_size={tuple(input_size)!r} differs from the metadata's input "
            f"size {metadata_without_onnx_sha.input_size!r}; pass the same size"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent)
    )
    try:
        metadata = _fill_staging(
            staging,
            classifier,
            metadata_without_onnx_sha,
            input_size=input_size,
            ood_reference=ood_reference,
            parity_batch=parity_batch,
        )
        staging.chmod(0o755)  # mkdtemp made it private
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote model %s to %s", metadata.model_id, target)
    return ModelPackage(path=target, metadata=metadata)


def _fill_staging(
    staging: Path,
    classifier: nn.Module,
    metadata: ModelMetadata,
    *,
    input_size: tuple[int, int],
    ood_reference: np.ndarray | None,
    parity_batch: np.ndarray,
) -> ModelMetadata:
    onnx_path = staging / ONNX_FILE
    export_onnx(classifier, onnx_path, input_size)
    parity_check(
        classifier,
        onnx_path,
        parity_batch,
        temperature=metadata.temperature,
        multi_label=metadata.project_type.is_multi_label,
    )
    metadata = dataclasses.replace(metadata, onnx_sha256=file_sha256(onnx_path))
    if ood_reference is not None:
        reference = np.asarray(ood_reference, dtype=np.float32)
        if reference.ndim != 2:
            raise ValidationError(
                f"ood_reference has shape {reference.shape}; it must be [M, D] "
                "embeddings"
            )
        np.save(staging / OOD_REFERENCE_FILE, reference, allow_pickle=False)
    text = json.dumps(metadata.to_dict(), indent=2, ensure_ascii=False)
    (staging / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
    return metadata


def _checked_batch(batch: np.ndarray) -> np.ndarray:
    array = np.asarray(batch)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValidationError(
            f"parity batch is {array.dtype} with shape {array.shape}; it must be "
            "uint8 [N, H, W, 3] images at the model input size"
        )
    if len(array) == 0:
        raise ValidationError("parity batch is empty; give at least one real image")
    return np.ascontiguousarray(array)

"""How a point on the axis becomes a loss's ``y_true`` and ``y_pred``.

The layouts (:data:`LAYOUT_TYPES`), their input builders, and the layout of each
first-party loss (:data:`LAYOUTS`).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from dl_techniques.losses.core import registry


@dataclasses.dataclass(frozen=True)
class _Layout:
    kind: str
    inputs: str
    build: Callable[[Any, Any, float | None], tuple[Any, Any]]
    targets: tuple[float | None, ...] = (None,)
    of_true_class: bool = False
    whole_batch: bool = False


def _column(predictions: Any) -> Any:
    return keras.ops.reshape(predictions, (-1, 1))


def _rows(count: int, *values: float) -> np.ndarray:
    return np.tile(np.array(values, "float32"), (count, 1))


def _plots_logits(loss: Any) -> bool:
    return bool(getattr(loss, "from_logits", False))


def _error_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    return np.ones((predictions.shape[0], 1), "float32"), 1.0 + _column(predictions)


def _quantile_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    rows = predictions.shape[0]
    quantile_count = len(loss.quantiles)
    y_pred = keras.ops.tile(
        keras.ops.reshape(1.0 + predictions, (-1, 1, 1)), (1, 1, quantile_count)
    )
    return np.ones((rows, 1), "float32"), y_pred


def _insample_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    rows, season = predictions.shape[0], loss.seasonality
    history = _rows(rows, *(np.arange(2 * season) // season))
    y_true = {"target": np.ones((rows, 2), "float32"), "insample": history}
    return y_true, keras.ops.tile(1.0 + _column(predictions), (1, 2))


def _binary_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    return np.full((predictions.shape[0], 1), target, "float32"), _column(predictions)


def _balanced_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    labels = (np.arange(predictions.shape[0]) % 2 == 0).astype("float32")
    complement = -predictions if _plots_logits(loss) else 1.0 - predictions
    y_pred = keras.ops.where(labels == 1.0, predictions, complement)
    return labels.reshape(-1, 1), _column(y_pred)


def _pair_prediction(loss: Any, predictions: Any) -> Any:
    first = keras.ops.zeros_like(predictions) if _plots_logits(loss) else 1.0 - predictions
    return keras.ops.stack([first, predictions], axis=1)


def _one_hot_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    label = 1.0 if target is None else target
    return _rows(predictions.shape[0], 1.0 - label, label), _pair_prediction(loss, predictions)


def _sparse_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    labels = np.full((predictions.shape[0],), int(1.0 if target is None else target), "int32")
    return labels, _pair_prediction(loss, predictions)


def _cosine_pair_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    features = keras.ops.stack([predictions, keras.ops.sqrt(1.0 - predictions**2)], axis=1)
    return _rows(predictions.shape[0], 1.0, 0.0), features


def _similarity_matrix_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    rows = predictions.shape[0]
    return np.zeros((rows,), "float32"), keras.ops.diag(predictions)


_BOTH_LABELS = (1.0, 0.0)
LAYOUT_TYPES: dict[str, _Layout] = {
    "error": _Layout("error", "target 1, prediction 1 + e", _error_inputs),
    "error_quantiles": _Layout("error", "target 1, quantiles all 1 + e", _quantile_inputs),
    "error_insample": _Layout(
        "error", "2 steps of target 1 predicted 1 + e, in-sample scale 1", _insample_inputs
    ),
    "binary": _Layout("probability", "label y_true, prediction {x}", _binary_inputs, _BOTH_LABELS),
    "binary_balanced": _Layout(
        "probability",
        "half the samples labelled 1 predicting {x}, half labelled 0 predicting {complement}",
        _balanced_inputs,
        of_true_class=True,
        whole_batch=True,
    ),
    "one_hot_pair": _Layout(
        "probability", "2 classes, one-hot y_true, prediction {pair}", _one_hot_inputs, _BOTH_LABELS
    ),
    "sparse_pair": _Layout(
        "logit", "2 classes, label y_true, logits [0, z]", _sparse_inputs, _BOTH_LABELS
    ),
    "cosine_pair": _Layout(
        "similarity", "target [1, 0], prediction [s, sqrt(1 - s^2)]", _cosine_pair_inputs
    ),
    "similarity_matrix": _Layout(
        "similarity",
        "similarity matrix with s on the diagonal (positives), 0 elsewhere (negatives)",
        _similarity_matrix_inputs,
        whole_batch=True,
    ),
}
"""The layouts a loss can declare: how a point on the axis becomes its inputs."""

LAYOUTS: dict[str, str] = {
    "HuberLoss": "error",
    "SMAPELoss": "error",
    "MASELoss": "error_insample",
    "MQLoss": "error_quantiles",
    "AccuracyLoss": "binary_balanced",
    "PrecisionLoss": "binary_balanced",
    "RecallLoss": "binary_balanced",
    "SpecificityLoss": "binary_balanced",
    "F1Loss": "binary_balanced",
    "FBetaLoss": "binary_balanced",
    "BalancedAccuracyLoss": "binary_balanced",
    "GeometricMeanLoss": "binary_balanced",
    "MCCLoss": "binary_balanced",
    "BrierScoreLoss": "binary",
    "SpiegelhalterZLoss": "binary",
    "CombinedCalibrationLoss": "binary",
    "CapsuleMarginLoss": "binary",
    "FocalUncertaintyLoss": "one_hot_pair",
    "DecoupledInformationLoss": "one_hot_pair",
    "GoodhartAwareLoss": "one_hot_pair",
    "StableMaxCrossEntropy": "sparse_pair",
    "FeatureAlignmentLoss": "cosine_pair",
    "CLIPContrastiveLoss": "similarity_matrix",
    "SigLIPContrastiveLoss": "similarity_matrix",
}
"""First-party losses by public name, with the key of their layout in :data:`LAYOUT_TYPES`."""


def plottable_names() -> list[str]:
    """Returns the installed names of :data:`LAYOUTS`, without importing them."""
    return [name for name in registry.names() if name in LAYOUTS]

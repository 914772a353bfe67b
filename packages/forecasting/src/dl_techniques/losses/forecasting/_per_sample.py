"""Input dtype and per-sample reduction shared by the forecasting losses."""

from typing import Any

from dl_techniques.losses.core import numerics, ops


def as_float_pair(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Returns both tensors in the compute dtype: float32 for half inputs."""
    y_pred = numerics.upcast_half(y_pred)
    y_true = numerics.as_float(y_true, y_pred)
    return y_true, y_pred


def mean_over_non_batch_axes(values: Any) -> Any:
    """Reduces ``(B, ...)`` to ``(B,)``; a rank-1 tensor is already per sample."""
    rank = len(values.shape)
    if rank <= 1:
        return values
    return ops.mean(values, axis=tuple(range(1, rank)))

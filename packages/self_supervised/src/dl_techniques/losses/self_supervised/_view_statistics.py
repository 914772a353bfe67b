"""Frequency-weighted statistics of two views over the global batch (VICReg, Barlow Twins).

Every statistic is a ratio of batch sums, each taken as the mean over
replicas of the local sums (``all_mean``): the ratio of two such means is the
ratio of the global sums, so N equal slices give the single-device value
(see :mod:`dl_techniques.losses.core.distributed`). The sums a step needs at
once travel in one collective. Under ``keras.distribution`` on jax the loss
sees the global batch and ``all_mean`` is the identity.
"""

import math
from typing import Any

import keras

from dl_techniques.losses.core.distributed import all_mean, replica_count
from dl_techniques.losses.core.numerics import safe_divide
from dl_techniques.losses.core.shapes import sizes_differ, static_shape
from dl_techniques.losses.self_supervised.nt_xent_loss import two_views


def views_and_weights(owner: str, y_pred: Any, sample_weight: Any | None) -> tuple[Any, Any, Any]:
    """Returns the two ``(B, D)`` views and ``(B,)`` frequency weights (``None`` without).

    ``y_pred`` is a ``{"view1", "view2"}`` dict or a ``(2B, D)`` tensor stacked
    ``[view1; view2]``; ``sample_weight`` a scalar, ``(B,)`` or ``(B, 1)``.
    On a single replica a batch known to hold one sample is rejected: its
    statistics over the batch are undefined.
    """
    first, second = two_views(owner, y_pred)
    first_shape = static_shape(first)
    if first_shape[0] == 1 and replica_count() == 1:
        raise ValueError(
            f"{owner}: the batch statistics need at least 2 samples per view; got view1 "
            f"shape {first_shape} and view2 shape {static_shape(second)}."
        )
    if sample_weight is None:
        return first, second, None
    weight_shape = static_shape(sample_weight)
    weights = sample_weight
    if len(weight_shape) == 2 and weight_shape[1] == 1:
        weights = keras.ops.squeeze(weights, axis=-1)
    shape = static_shape(weights)
    if len(shape) > 1 or (shape and sizes_differ(shape[0], first_shape[0])):
        raise ValueError(
            f"{owner}: `sample_weight` must be a scalar or have shape (B,) or (B, 1), one "
            f"weight per pair of views; got sample_weight shape {weight_shape} and view1 "
            f"shape {first_shape}."
        )
    return first, second, keras.ops.cast(weights, first.dtype) * keras.ops.ones_like(first[:, 0])


class WeightedBatch:
    """Weighted means over the global batch, with frequency weights ``w``.

    ``means(sum(v), ...)`` turns local weighted sums into ``sum_i w_i v_i /
    sum_i w_i`` over every replica's rows (0 where the weights sum to 0),
    averaging all of them across replicas in one collective. The first call
    also takes the weight total ``total = sum_i w_i`` over every replica.
    ``weights=None`` weighs every row 1, without multiplying by it.
    """

    def __init__(self, weights: Any, rows: Any) -> None:
        self.weights = weights
        if weights is None:
            self._local_total = keras.ops.cast(keras.ops.shape(rows)[0], rows.dtype)
        else:
            self._local_total = keras.ops.sum(weights)
        self.total: Any = None
        self._inverse_replica_total: Any = None

    def sum(self, values: Any) -> Any:
        """``sum_i w_i values_i`` over the local rows of ``(b, ...)`` values."""
        if self.weights is not None:
            shape = (-1,) + (1,) * (len(values.shape) - 1)
            values = keras.ops.reshape(self.weights, shape) * values
        return keras.ops.sum(values, axis=0)

    def cross_sum(self, first: Any, second: Any) -> Any:
        """``sum_i w_i first_i^T second_i`` over the local rows, a ``(D, D)`` matrix."""
        if self.weights is not None:
            first = first * keras.ops.expand_dims(self.weights, axis=-1)
        # einsum keeps float64 on torch, where Keras' matmul computes it in float32.
        return keras.ops.einsum("bi,bj->ij", first, second)

    def means(self, *local_sums: Any) -> list[Any]:
        """The global weighted means whose local sums are ``local_sums``."""
        if self._inverse_replica_total is None:
            # The replicas' mean local weight sum; the global sum is R times it.
            replica_total, *averaged = _all_mean_together(self._local_total, *local_sums)
            self.total = replica_count() * replica_total
            self._inverse_replica_total = safe_divide(
                keras.ops.ones_like(replica_total), replica_total
            )
        else:
            averaged = _all_mean_together(*local_sums)
        return [value * self._inverse_replica_total for value in averaged]


def off_diagonal_square_sum(matrix: Any) -> Any:
    """Returns ``sum_{i != j} matrix_ij^2`` of a square matrix.

    As the full sum less the diagonal's, without a ``(D, D)`` mask: the
    gradient is exactly 0 on the diagonal, and the value loses only the
    float rounding of the diagonal's share.
    """
    diagonal = keras.ops.diagonal(matrix)
    return keras.ops.sum(keras.ops.square(matrix)) - keras.ops.sum(keras.ops.square(diagonal))


def _all_mean_together(*tensors: Any) -> list[Any]:
    """``all_mean`` of each tensor, through one collective where there are replicas."""
    if replica_count() == 1:
        return list(tensors)
    shapes = [static_shape(tensor) for tensor in tensors]
    if any(None in shape for shape in shapes):
        return [all_mean(tensor) for tensor in tensors]
    flat = keras.ops.concatenate([keras.ops.reshape(tensor, (-1,)) for tensor in tensors])
    averaged = all_mean(flat)
    results, start = [], 0
    for shape in shapes:
        size = math.prod(dimension for dimension in shape if dimension is not None)
        results.append(keras.ops.reshape(averaged[start : start + size], shape))
        start += size
    return results

"""The base class of losses whose value is one scalar per batch."""

import numbers
from typing import Any

import keras
import numpy as np

from dl_techniques.losses.core import distributed, numerics, scopes, validation


class BatchLoss(keras.losses.Loss):
    """A loss computed from the whole batch at once, returning one scalar.

    ``keras.losses.Loss`` computes one value per sample, then weights and
    reduces them. A statistic of the whole batch (a soft confusion matrix, a
    calibration statistic, a mean over the valid tokens of the batch, a Dice
    ratio pooled over images) cannot be written that way: its weights act
    inside the statistic. A subclass writes only that math, in
    :meth:`batch_value`; this class owns the rest, once for every family:

    - a name scope with the loss's name (``scopes.loss_name_scope``: not on torch,
      where it names nothing a loss creates);
    - the inputs as tensors, floating leaves of any structure in the compute
      dtype (float32 when the loss dtype is float16 or bfloat16), integer and
      boolean leaves as they are;
    - ``sample_weight`` as a tensor in the compute dtype (or ``None``), for
      :meth:`batch_value` to apply as frequency weights inside the statistic,
      or to reject with a ``ValueError``;
    - a single reduction (the statistic is the reduction), the result cast
      to the loss dtype and, under ``tf.distribute``, divided by the replica
      count as Keras divides its mean reductions
      (``distributed.scale_for_replicas``; not for ``reduction="sum"`` or
      ``"none"``, which Keras does not scale either);
    - value checks on the first eager call only (see
      :mod:`dl_techniques.losses.core.validation`).

    A loss that is per sample in some configurations (``per_image=True``)
    returns ``True`` from :meth:`is_per_sample`; Keras then weights and
    reduces the ``(batch,)`` values :meth:`batch_value` returns as usual.

    Example:

    ```python
    class MeanAbsoluteErrorOfTheBatch(BatchLoss):
        def batch_value(self, y_true, y_pred, sample_weight):
            errors = keras.ops.abs(y_true - y_pred)
            if sample_weight is None:
                return keras.ops.mean(errors)
            return numerics.weighted_mean(errors, keras.ops.reshape(sample_weight, (-1, 1)))
    ```
    """

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        """Returns the loss of the batch as a scalar tensor.

        Args:
            y_true: Targets, floating leaves in :attr:`compute_dtype`.
            y_pred: Predictions, floating leaves in :attr:`compute_dtype`.
            sample_weight: ``None`` or a tensor in :attr:`compute_dtype`.
        """
        raise NotImplementedError

    def is_per_sample(self) -> bool:
        """Whether :meth:`batch_value` returns one value per sample in this configuration."""
        return False

    @property
    def compute_dtype(self) -> str:
        """The dtype of the computation: float32 for a half loss dtype."""
        return numerics.compute_dtype(self.dtype)

    @validation.checks_values
    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        if self.is_per_sample():
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        with scopes.loss_name_scope(self.name):
            weights = None if sample_weight is None else self._as_compute_tensor(sample_weight)
            value = self.batch_value(
                self.compute_inputs(y_true), self.compute_inputs(y_pred), weights
            )
            if self.reduction not in (None, "none", "sum"):
                value = distributed.scale_for_replicas(value)
            return numerics.as_tensor(value, self.dtype)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        # Keras' Loss.__call__ reaches here for per-sample configurations; a
        # direct call follows the same first-eager-call rule.
        return self.batch_value(self.compute_inputs(y_true), self.compute_inputs(y_pred), None)

    def compute_inputs(self, value: Any) -> Any:
        """Returns an input structure as :meth:`__call__` hands it to :meth:`batch_value`.

        Floating leaves in :attr:`compute_dtype`, integer and boolean leaves as
        they are. For methods that take the loss's inputs outside
        ``__call__`` (e.g. a ``components`` method for logging).
        """
        # Dicts and tuples are structures of inputs; a (nested) list of
        # numbers is one tensor, as it is to keras.ops.convert_to_tensor.
        if isinstance(value, dict):
            return {key: self.compute_inputs(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)) and not _holds_only_numbers(value):
            return type(value)(self.compute_inputs(item) for item in value)
        if value is None:
            return None
        return self._as_compute_tensor(value)

    def _as_compute_tensor(self, value: Any) -> Any:
        tensor = numerics.as_tensor(value)
        dtype, compute_dtype = numerics.dtype_name(tensor), self.compute_dtype
        if dtype != compute_dtype and dtype.startswith(("float", "bfloat")):
            return keras.ops.cast(tensor, compute_dtype)
        return tensor


def _holds_only_numbers(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_holds_only_numbers(item) for item in value)
    return isinstance(value, (numbers.Number, np.generic))

"""The base class of losses that compute one value per sample."""

from typing import Any

import keras

from dl_techniques.losses.core import distributed, numerics, ops, scopes

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


class PerSampleLoss(keras.losses.Loss):
    """A loss whose :meth:`call` returns one value per sample, shape ``(batch,)``.

    Keras weights and reduces the values of :meth:`call` as it does for every
    ``keras.losses.Loss``. In the case a training step meets most often (no
    ``sample_weight``, no mask on ``y_pred``, a mean reduction) the loss is
    the mean of the per-sample values,

    ```
    loss = (1 / B) sum_b call(y_true, y_pred)_b = batch_mean(y_true, y_pred)
    ```

    and ``__call__`` computes it with :meth:`batch_mean` directly: the inputs
    are converted as Keras converts them, the result is scaled for
    ``tf.distribute`` replicas as Keras scales a mean
    (``distributed.scale_for_replicas``) and cast to the loss dtype, without
    the weighting and masking steps that have nothing to do. A subclass whose
    per-sample value is a mean of elementwise values can override
    :meth:`batch_mean` with one fused reduction over every element (a native
    kernel of :mod:`dl_techniques.losses.core.ops`), which gives the same
    value because every sample averages the same number of elements.

    Example:

    ```python
    class MeanAbsoluteError(PerSampleLoss):
        def call(self, y_true, y_pred):
            return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)
    ```
    """

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        if not self._reduces_to_batch_mean(y_pred, sample_weight):
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        with scopes.loss_name_scope(self.name):
            y_true, y_pred = self._as_loss_tensors(y_true), self._as_loss_tensors(y_pred)
            value = distributed.scale_for_replicas(self.batch_mean(y_true, y_pred))
            return numerics.as_tensor(value, self.dtype)

    def batch_mean(self, y_true: Any, y_pred: Any) -> Any:
        """Returns the mean over the batch of :meth:`call`, a scalar.

        Args:
            y_true: Targets, tensors in the loss dtype, as :meth:`call` gets them.
            y_pred: Predictions, tensors in the loss dtype.
        """
        values = self.call(y_true, y_pred)
        return ops.mean(values, axis=tuple(range(len(values.shape))))

    def _as_loss_tensors(self, value: Any) -> Any:
        # A dict of tensors, the common structure, without the tree traversal.
        if type(value) is dict:
            return {key: self._as_loss_tensors(item) for key, item in value.items()}
        if not keras.ops.is_tensor(value) and keras.tree.is_nested(value):
            return keras.tree.map_structure(self._as_loss_tensors, value)
        return numerics.as_tensor(value, self.dtype)

    def _reduces_to_batch_mean(self, y_pred: Any, sample_weight: Any | None) -> bool:
        if sample_weight is not None or self.reduction not in _MEAN_REDUCTIONS:
            return False
        # Keras masks by the mask of y_pred itself, which a structure never has.
        if keras.ops.is_tensor(y_pred) or not keras.tree.is_nested(y_pred):
            if _keras_mask(y_pred) is not None:
                return False
            leaf = y_pred
        else:
            # keras.tree.flatten's first leaf; a dict's is in its smallest key's value.
            first = y_pred[min(y_pred)] if type(y_pred) is dict and y_pred else y_pred
            leaves = [first] if keras.ops.is_tensor(first) else keras.tree.flatten(first)
            leaf = leaves[0] if leaves else None
        # An empty batch, or one of unknown size, goes through Keras' own reduction.
        shape = tuple(getattr(leaf, "shape", ()))
        return bool(shape) and shape[0] is not None and shape[0] > 0


# The mask a masking layer attached to its output, which Keras' own __call__
# applies; Keras keeps the accessor outside its public API, and releases before
# it had one stored the mask as an attribute.
try:
    from keras.src.backend import get_keras_mask as _keras_mask
except ImportError:

    def _keras_mask(tensor: Any) -> Any:
        return getattr(tensor, "_keras_mask", None)

"""Entropies, validation and batch weighting shared by the information-theoretic losses."""

import math
import numbers
from typing import Any

import keras

from dl_techniques.losses.core import distributed, numerics, validation

# Floor of the argument of log in p log p for batch-mean probabilities: a class
# no sample predicts has p-bar = 0, whose log would be -inf. Below 1e-30 the
# term p log p is under 1e-28, so the floor changes no value in float32 or
# float64, while its gradient stays finite.
_LOG_FLOOR = 1e-30

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


def non_negative_number(loss_name, argument, value):
    """Returns ``value`` as a float, or raises ``ValueError`` unless finite and >= 0."""
    if not _is_real_number(value) or value < 0.0:
        raise ValueError(
            f"{loss_name}: `{argument}` must be a finite number >= 0; got {argument}={value!r}."
        )
    return float(value)


def label_smoothing_value(loss_name, value):
    """Returns ``value`` as a float, or raises ``ValueError`` unless in [0, 1)."""
    if not _is_real_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"{loss_name}: `label_smoothing` must be a number in [0, 1); "
            f"got label_smoothing={value!r}."
        )
    return float(value)


def boolean_flag(loss_name, argument, value):
    """Returns ``value``, or raises ``ValueError`` unless it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(
            f"{loss_name}: `{argument}` must be True or False; got {argument}={value!r}."
        )
    return value


def check_class_shapes(loss_name, y_true, y_pred):
    """Raises ``ValueError`` unless ``y_pred`` is ``(B, K)`` and ``y_true`` has its shape."""
    true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
    if len(pred_shape) != 2:
        raise ValueError(
            f"{loss_name}: `y_pred` must have shape (batch, num_classes); got y_pred shape "
            f"{pred_shape}."
        )
    if len(true_shape) != 2 or not all(
        _same_or_unknown(a, b) for a, b in zip(true_shape, pred_shape, strict=True)
    ):
        raise ValueError(
            f"{loss_name}: `y_true` must be one-hot with the shape of y_pred (batch, "
            f"num_classes); got y_true shape {true_shape} and y_pred shape {pred_shape}."
        )


def check_values(loss_name: str, y_true: Any, y_pred: Any, from_logits: bool) -> None:
    """Raises ``ValueError`` for targets other than 0 and 1, or bad probabilities.

    The targets are one-hot (label smoothing is applied inside the loss, to
    hard targets); ``y_pred`` must lie in [0, 1] when ``from_logits=False``.
    Value checks of ``dl_techniques.losses.core.validation``: first eager call
    of a loss instance only, none under jit; NaN propagates.
    """
    validation.check_binary(loss_name, "y_true", y_true, what="one-hot targets")
    if not from_logits:
        validation.check_probabilities(loss_name, "y_pred", y_pred)


def static_shape(tensor):
    """Returns the static shape as a tuple, ``None`` where unknown."""
    return tuple(None if dim is None else int(dim) for dim in tensor.shape)


def as_float_pair(y_true, y_pred):
    """Returns both tensors in the compute dtype: float32 for half inputs."""
    y_pred = numerics.upcast_half(y_pred)
    y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
    return y_true, y_pred


def probabilities_and_logs(y_pred, from_logits):
    """Returns ``(p, log p)`` of the predicted class distribution, each ``(B, K)``.

    Logits go through ``log_softmax``, which stays finite for any finite logit.
    Probabilities are renormalised and clipped to ``[epsilon, 1 - epsilon]``
    before the log, as ``keras.losses.categorical_crossentropy`` does.
    """
    if from_logits:
        log_probs = keras.ops.log_softmax(y_pred, axis=-1)
        return keras.ops.exp(log_probs), log_probs
    epsilon = keras.config.epsilon()
    probs = y_pred / keras.ops.sum(y_pred, axis=-1, keepdims=True)
    probs = keras.ops.clip(probs, epsilon, 1.0 - epsilon)
    return probs, keras.ops.log(probs)


def smoothed_targets(y_true, label_smoothing):
    """Returns ``y (1 - s) + s / K``, Keras' label smoothing of one-hot targets."""
    if not label_smoothing:
        return y_true
    num_classes = keras.ops.cast(keras.ops.shape(y_true)[-1], y_true.dtype)
    return y_true * (1.0 - label_smoothing) + label_smoothing / num_classes


def cross_entropy(targets, log_probs):
    """Per-sample ``-sum_k t_k log p_k``, shape ``(B,)``."""
    return -keras.ops.sum(targets * log_probs, axis=-1)


def entropy(probs, log_probs):
    """Per-sample ``H(p) = -sum_k p_k log p_k``, shape ``(B,)``."""
    return -keras.ops.sum(probs * log_probs, axis=-1)


def entropy_of_distribution(probs):
    """``-sum_k p_k log p_k`` of a distribution that may hold exact zeros."""
    return -keras.ops.sum(probs * keras.ops.log(keras.ops.maximum(probs, _LOG_FLOOR)), axis=-1)


def batch_mean(values, weights=None):
    """Mean over the batch axis, weighted when ``weights`` ``(B,)`` is given.

    Under data-parallel training the mean is taken over every replica's
    samples (equal slices), so it is the single-device batch statistic. With
    weights it is ``sum_i w_i x_i / sum_i w_i``, and 0 when every weight is 0.
    """
    if weights is None:
        return distributed.all_mean(keras.ops.mean(values, axis=0))
    weights = keras.ops.reshape(weights, (-1,) + (1,) * (len(values.shape) - 1))
    weighted_sum = distributed.all_mean(keras.ops.sum(weights * values, axis=0))
    total_weight = distributed.all_mean(keras.ops.sum(weights))
    return _divide_or_zero(weighted_sum, total_weight)


class BatchStatisticLoss(keras.losses.Loss):
    """A per-sample loss whose samples share batch statistics.

    ``call`` returns one value per sample, each carrying the batch terms, so
    without ``sample_weight`` Keras reduces it as any per-sample loss. A
    ``sample_weight`` is a frequency weight: the batch statistics become
    weighted means (read in ``call`` from ``self._frequency_weights``), and
    the mean reductions divide by the sum of the weights, so an integer weight
    ``k`` equals repeating the sample ``k`` times and weight 0 drops it.
    """

    _frequency_weights = None

    @validation.checks_values
    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return super().__call__(y_true, y_pred)
        # Keras converts the inputs again; the originals go on so that a
        # mask attached to y_pred reaches it.
        prediction = keras.ops.convert_to_tensor(y_pred, dtype=self.dtype)
        check_class_shapes(
            type(self).__name__, keras.ops.convert_to_tensor(y_true, dtype=self.dtype), prediction
        )
        weights = self._validated_weights(sample_weight, prediction)
        if self.reduction in _MEAN_REDUCTIONS:
            # Keras divides the weighted sum by the batch size; rescaling the
            # weights to mean 1 turns that into a division by their sum.
            reduction_weights = _divide_or_zero(
                weights, distributed.all_mean(keras.ops.mean(weights))
            )
        else:
            reduction_weights = weights
        self._frequency_weights = weights
        try:
            return super().__call__(y_true, y_pred, sample_weight=reduction_weights)
        finally:
            self._frequency_weights = None

    def _validated_weights(self, sample_weight, y_pred):
        weights = numerics.upcast_half(keras.ops.convert_to_tensor(sample_weight, dtype=self.dtype))
        given_shape = static_shape(weights)
        if len(given_shape) == 0:
            weights = weights * keras.ops.ones_like(y_pred[:, 0])
        elif len(given_shape) == 2 and given_shape[-1] == 1:
            weights = keras.ops.squeeze(weights, axis=-1)
        weight_shape, batch = static_shape(weights), static_shape(y_pred)[0]
        if len(weight_shape) != 1 or not _same_or_unknown(weight_shape[0], batch):
            raise ValueError(
                f"{type(self).__name__}: `sample_weight` must be a scalar or have shape "
                f"(batch,) or (batch, 1); got sample_weight shape {given_shape} "
                f"and y_pred shape {static_shape(y_pred)}."
            )
        return weights

    def get_config(self):
        return {**super().get_config(), "dtype": self._dtype_policy.name}


def _same_or_unknown(first, second):
    return first is None or second is None or first == second


def _divide_or_zero(numerator, denominator):
    safe = keras.ops.where(denominator > 0, denominator, keras.ops.ones_like(denominator))
    return keras.ops.where(denominator > 0, numerator / safe, keras.ops.zeros_like(numerator))


def _is_real_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)

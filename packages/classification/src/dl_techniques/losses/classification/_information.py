"""Entropies, validation and batch weighting shared by the information-theoretic losses."""

from typing import Any

import keras

from dl_techniques.losses.core import distributed, numerics, shapes, validation

# Floor of the argument of log in p log p for batch-mean probabilities: a class
# no sample predicts has p-bar = 0, whose log would be -inf. Below 1e-30 the
# term p log p is under 1e-28, so the floor changes no value in float32 or
# float64, while its gradient stays finite.
_LOG_FLOOR = 1e-30

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


def non_negative_number(loss_name: str, argument: str, value: Any) -> float:
    """Returns ``value`` as a float, or raises ``ValueError`` unless finite and >= 0."""
    validation.check_non_negative(loss_name, argument, value)
    return float(value)


def label_smoothing_value(loss_name: str, value: Any) -> float:
    """Returns ``value`` as a float, or raises ``ValueError`` unless in [0, 1).

    Core's ``check_interval`` is closed; smoothing 1 would leave no target.
    """
    if not validation.is_real_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"{loss_name}: `label_smoothing` must be a number in [0, 1); "
            f"got label_smoothing={value!r}."
        )
    return float(value)


def check_class_shapes(loss_name: str, y_true: Any, y_pred: Any) -> None:
    """Raises ``ValueError`` unless ``y_pred`` is ``(B, K)`` and ``y_true`` has its shape."""
    true_shape, pred_shape = shapes.static_shape(y_true), shapes.static_shape(y_pred)
    if len(pred_shape) != 2:
        raise ValueError(
            f"{loss_name}: `y_pred` must have shape (batch, num_classes); got y_pred shape "
            f"{pred_shape}."
        )
    if not shapes.shapes_match(true_shape, pred_shape):
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


def as_float_pair(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Returns both tensors in the compute dtype: float32 for half inputs."""
    y_pred = numerics.upcast_half(y_pred)
    y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
    return y_true, y_pred


def probabilities_and_logs(y_pred: Any, from_logits: bool) -> tuple[Any, Any]:
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


def smoothed_targets(y_true: Any, label_smoothing: float) -> Any:
    """Returns ``y (1 - s) + s / K``, Keras' label smoothing of one-hot targets."""
    if not label_smoothing:
        return y_true
    num_classes = keras.ops.cast(keras.ops.shape(y_true)[-1], y_true.dtype)
    return y_true * (1.0 - label_smoothing) + label_smoothing / num_classes


def cross_entropy(targets: Any, log_probs: Any) -> Any:
    """Per-sample ``-sum_k t_k log p_k``, shape ``(B,)``."""
    return -keras.ops.sum(targets * log_probs, axis=-1)


def entropy(probs: Any, log_probs: Any) -> Any:
    """Per-sample ``H(p) = -sum_k p_k log p_k``, shape ``(B,)``."""
    return -keras.ops.sum(probs * log_probs, axis=-1)


def entropy_of_distribution(probs: Any) -> Any:
    """``-sum_k p_k log p_k`` of a distribution that may hold exact zeros."""
    return -keras.ops.sum(probs * keras.ops.log(keras.ops.maximum(probs, _LOG_FLOOR)), axis=-1)


def batch_mean(values: Any, weights: Any | None = None) -> Any:
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
    return numerics.safe_divide(weighted_sum, total_weight)


def frequency_weights(loss_name: str, sample_weight: Any | None, y_pred: Any) -> Any | None:
    """Returns ``sample_weight`` as ``(B,)`` frequency weights, or ``None``.

    A scalar weights every sample alike; ``(B, 1)`` is read as ``(B,)``.

    Raises:
        ValueError: For any other shape.
    """
    if sample_weight is None:
        return None
    weights = numerics.as_float(keras.ops.convert_to_tensor(sample_weight), y_pred)
    given_shape = shapes.static_shape(weights)
    if len(given_shape) == 0:
        weights = weights * keras.ops.ones_like(y_pred[:, 0])
    elif len(given_shape) == 2 and given_shape[-1] == 1:
        weights = keras.ops.squeeze(weights, axis=-1)
    weight_shape, batch = shapes.static_shape(weights), shapes.static_shape(y_pred)[0]
    if len(weight_shape) != 1 or shapes.sizes_differ(weight_shape[0], batch):
        raise ValueError(
            f"{loss_name}: `sample_weight` must be a scalar or have shape (batch,) or "
            f"(batch, 1); got sample_weight shape {given_shape} and y_pred shape "
            f"{shapes.static_shape(y_pred)}."
        )
    return weights


def reduce_per_sample(values: Any, weights: Any | None, reduction: str | None) -> Any:
    """Applies ``reduction`` to per-sample ``values`` under frequency ``weights``.

    What ``keras.losses.Loss`` does with one value per sample, except that the
    mean reductions divide the weighted sum by the sum of the weights (not by
    the batch size), so an integer weight ``k`` equals repeating the sample
    ``k`` times. ``None``/``"none"`` gives ``w_i loss_i``, ``"sum"`` their
    sum. As Keras does, a mean is divided by the replica count under
    ``tf.distribute``, whose replicas' values are then summed.
    """
    weighted = values if weights is None else weights * values
    if reduction in (None, "none"):
        return weighted
    total = keras.ops.sum(weighted)
    if reduction == "sum":
        return total
    batch_size = keras.ops.cast(keras.ops.shape(values)[0], values.dtype)
    if weights is None:
        mean = numerics.safe_divide(total, batch_size)
    elif reduction in _MEAN_REDUCTIONS:
        # The mean weight of the global batch: under data parallelism every
        # replica's slice is then divided by the same global sum of weights.
        mean_weight = distributed.all_mean(keras.ops.mean(weights))
        mean = numerics.safe_divide(total, batch_size * mean_weight)
    else:
        mean = numerics.safe_divide(total, keras.ops.sum(weights))
    return mean

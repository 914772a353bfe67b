"""Labels, group means and the gradient-norm penalty shared by the WGAN losses.

Critic scores come as ``(B,)`` or ``(B, 1)``; labels mark real samples with 1
and fake samples with 0 or -1, so both the 1/0 and the +1/-1 conventions work.
"""

import math
import numbers

import keras

from dl_techniques.losses.core import numerics

GRADIENT_NORM_EPSILON = 1e-12
"""The constant under the square root of the per-sample gradient norm."""

ACCEPTED_LABELS = (-1.0, 0.0, 1.0)


def check_lambda_gp(owner, lambda_gp):
    """Raises ``ValueError`` unless ``lambda_gp`` is a finite real number >= 0."""
    is_real = isinstance(lambda_gp, numbers.Real) and not isinstance(lambda_gp, bool)
    if not (is_real and math.isfinite(lambda_gp) and lambda_gp >= 0.0):
        raise ValueError(
            f"{owner}: `lambda_gp` must be a finite number >= 0; got lambda_gp={lambda_gp!r}."
        )


def check_bool(owner, argument, value):
    """Raises ``ValueError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: `{argument}` must be a bool; got {argument}={value!r}.")


def static_shape(tensor):
    """Returns the static shape as a tuple, ``None`` where unknown."""
    return tuple(None if dim is None else int(dim) for dim in tensor.shape)


def scores_and_labels(owner, y_true, y_pred):
    """Returns ``(labels, scores)`` as float ``(B,)`` tensors after shape checks.

    Half-precision scores are computed in float32. ``(B,)`` and ``(B, 1)``
    are interchangeable for both arguments.
    """
    scores = _as_column_free(owner, "y_pred", numerics.upcast_half(y_pred))
    labels = keras.ops.convert_to_tensor(y_true)
    labels = _as_column_free(owner, "y_true", numerics.as_float(labels, scores))
    label_batch, score_batch = static_shape(labels)[0], static_shape(scores)[0]
    if label_batch is not None and score_batch is not None and label_batch != score_batch:
        raise ValueError(
            f"{owner}: `y_true` and `y_pred` must have one label per critic score; got "
            f"y_true shape {static_shape(keras.ops.convert_to_tensor(y_true))} and y_pred "
            f"shape {static_shape(keras.ops.convert_to_tensor(y_pred))}."
        )
    return labels, scores


def check_labels(owner, labels):
    """Raises ``ValueError`` for a label outside {1, 0, -1}.

    Only tensors that hold values can be checked: under ``tf.function``,
    ``jax.jit`` or ``torch.compile`` the check is skipped.
    """
    if not numerics.holds_values(labels):
        return
    accepted = keras.ops.zeros_like(labels, dtype="bool")
    for value in ACCEPTED_LABELS:
        accepted = keras.ops.logical_or(accepted, keras.ops.equal(labels, value))
    if bool(keras.ops.convert_to_numpy(keras.ops.all(accepted))):
        return
    rejected = sorted(
        {value for value in keras.ops.convert_to_numpy(labels).tolist()} - set(ACCEPTED_LABELS)
    )
    raise ValueError(
        f"{owner}: `y_true` must be 1 for real and 0 (or -1) for fake samples; got "
        f"the value(s) {rejected[:5]} in y_true of shape {static_shape(labels)}."
    )


def group_weights(labels, weights):
    """Returns the ``(B,)`` weights of the real and of the fake samples."""
    real = keras.ops.cast(keras.ops.greater(labels, 0.5), labels.dtype)
    return weights * real, weights * (1.0 - real)


def weighted_group_mean(scores, weights):
    """Returns ``sum_i w_i s_i / sum_i w_i``; 0 when the weights sum to 0."""
    total = keras.ops.sum(weights)
    has_weight = keras.ops.greater(total, 0.0)
    safe_total = keras.ops.where(has_weight, total, keras.ops.ones_like(total))
    mean = keras.ops.sum(weights * scores) / safe_total
    return keras.ops.where(has_weight, mean, keras.ops.zeros_like(mean))


def critic_objective(labels, scores, weights):
    """Returns ``mean_fake D - mean_real D`` with per-group weighted means."""
    real_weights, fake_weights = group_weights(labels, weights)
    return weighted_group_mean(scores, fake_weights) - weighted_group_mean(scores, real_weights)


def gradient_norm_penalty(gradients, lambda_gp):
    """Returns ``lambda_gp * mean_i (||g_i|| - 1)^2`` for ``(B, ...)`` gradients.

    ``||g_i|| = sqrt(sum g_i^2 + 1e-12)`` over every non-batch axis, so the
    penalty has a finite gradient where a gradient vanishes.
    """
    gradients = numerics.upcast_half(gradients)
    rank = len(gradients.shape)
    squared = keras.ops.square(gradients)
    if rank > 1:
        squared = keras.ops.sum(squared, axis=tuple(range(1, rank)))
    norms = keras.ops.sqrt(squared + GRADIENT_NORM_EPSILON)
    return lambda_gp * keras.ops.mean(keras.ops.square(norms - 1.0))


def _as_column_free(owner, argument, tensor):
    shape = static_shape(tensor)
    if len(shape) == 2 and shape[1] == 1:
        return keras.ops.squeeze(tensor, axis=-1)
    if len(shape) != 1:
        raise ValueError(
            f"{owner}: `{argument}` must have shape (batch,) or (batch, 1), one critic "
            f"score or label per sample; got {argument} shape {shape}."
        )
    return tensor

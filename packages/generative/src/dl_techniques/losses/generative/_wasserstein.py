"""Labels, group means and the gradient-norm penalty shared by the WGAN losses.

Critic scores come as ``(B,)`` or ``(B, 1)``; labels mark real samples with 1
and fake samples with 0 or -1, so both the 1/0 and the +1/-1 conventions work.
"""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation

GRADIENT_NORM_EPSILON = 1e-12
"""The constant under the square root of the per-sample gradient norm."""

ACCEPTED_LABELS = (-1.0, 0.0, 1.0)


def scores_and_labels(owner: str, y_true: Any, y_pred: Any, dtype: str) -> tuple[Any, Any]:
    """Returns ``(labels, scores)`` as ``(B,)`` tensors in ``dtype`` after shape checks.

    ``(B,)`` and ``(B, 1)`` are interchangeable for both arguments.
    """
    scores = keras.ops.cast(keras.ops.convert_to_tensor(y_pred), dtype)
    scores = _as_column_free(owner, "y_pred", scores)
    labels = keras.ops.convert_to_tensor(y_true)
    labels = _as_column_free(owner, "y_true", numerics.as_float(labels, scores))
    if shapes.sizes_differ(shapes.static_shape(labels)[0], shapes.static_shape(scores)[0]):
        raise ValueError(
            f"{owner}: `y_true` and `y_pred` must have one label per critic score; got "
            f"y_true shape {shapes.static_shape(keras.ops.convert_to_tensor(y_true))} and y_pred "
            f"shape {shapes.static_shape(keras.ops.convert_to_tensor(y_pred))}."
        )
    return labels, scores


def check_labels(owner: str, labels: Any) -> None:
    """Raises ``ValueError`` for a label outside {1, 0, -1}.

    A value check (``core.validation``): it reads ``labels`` only on eager
    calls, and inside a loss decorated with ``validation.checks_values`` only
    on the first eager call of the instance. A NaN label raises too: it would
    otherwise count silently as a fake sample.
    """
    if not validation.values_due(labels):
        return
    accepted = keras.ops.zeros_like(labels, dtype="bool")
    for value in ACCEPTED_LABELS:
        accepted = keras.ops.logical_or(accepted, keras.ops.equal(labels, value))
    if bool(keras.ops.convert_to_numpy(keras.ops.all(accepted))):
        return
    found = keras.ops.convert_to_numpy(labels).tolist()
    rejected = sorted({value for value in found if value not in ACCEPTED_LABELS})
    raise ValueError(
        f"{owner}: `y_true` must be 1 for real and 0 (or -1) for fake samples; got "
        f"the value(s) {rejected[:5]} in y_true of shape {shapes.static_shape(labels)}."
    )


def check_gradient_batch(owner: str, scores: Any, gradients: Any) -> None:
    """Raises ``ValueError`` unless the gradients' batch fits the number of scores.

    The interpolates are either one per scored sample (``B' = B``) or one per
    real/fake pair when the scores hold the real and the fake samples of the
    pairs (``B = 2 B'``, Gulrajani et al.'s Algorithm 1). A static shape check:
    it runs on every call, traced or eager, and skips an unknown dimension.
    """
    score_batch = shapes.static_shape(scores)[0]
    gradient_batch = shapes.static_shape(gradients)[0]
    if score_batch is None or gradient_batch is None:
        return
    if gradient_batch in (score_batch, score_batch / 2):
        return
    raise ValueError(
        f"{owner}: the batch of `y_pred['interpolate_gradients']` must equal the number of "
        "critic scores (one interpolate per scored sample) or half of it (one interpolate "
        "per real/fake pair); got y_pred['scores'] shape "
        f"{shapes.static_shape(scores)} and y_pred['interpolate_gradients'] shape "
        f"{shapes.static_shape(gradients)}."
    )


def sample_weights(owner: str, sample_weight: Any, scores: Any) -> Any:
    """Returns ``sample_weight`` as ``(B,)`` weights in the dtype of ``scores``.

    ``None`` gives ones; a scalar, ``(B,)`` and ``(B, 1)`` are accepted.
    """
    ones = keras.ops.ones_like(scores)
    if sample_weight is None:
        return ones
    weights = keras.ops.cast(keras.ops.convert_to_tensor(sample_weight), scores.dtype)
    shape = shapes.static_shape(weights)
    if len(shape) == 2 and shape[1] == 1:
        weights = keras.ops.squeeze(weights, axis=-1)
        shape = shape[:1]
    batch = shapes.static_shape(scores)[0]
    if len(shape) > 1 or (shape and None not in (shape[0], batch) and shape[0] != batch):
        raise ValueError(
            f"{owner}: `sample_weight` must be a scalar or have shape (batch,) or "
            f"(batch, 1); got sample_weight shape {shapes.static_shape(weights)} for "
            f"critic scores of shape {shapes.static_shape(scores)}."
        )
    return weights * ones


def group_weights(labels: Any, weights: Any) -> tuple[Any, Any]:
    """Returns the ``(B,)`` weights of the real and of the fake samples."""
    real = keras.ops.cast(keras.ops.greater(labels, 0.5), labels.dtype)
    return weights * real, weights * (1.0 - real)


def critic_objective(labels: Any, scores: Any, weights: Any) -> Any:
    """Returns ``mean_fake D - mean_real D`` with per-group weighted means (0 for no sample)."""
    real_weights, fake_weights = group_weights(labels, weights)
    return numerics.weighted_mean(scores, fake_weights) - numerics.weighted_mean(
        scores, real_weights
    )


def gradient_norm_penalty(gradients: Any, lambda_gp: float) -> Any:
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


def _as_column_free(owner: str, argument: str, tensor: Any) -> Any:
    shape = shapes.static_shape(tensor)
    if len(shape) == 2 and shape[1] == 1:
        return keras.ops.squeeze(tensor, axis=-1)
    if len(shape) != 1:
        raise ValueError(
            f"{owner}: `{argument}` must have shape (batch,) or (batch, 1), one critic "
            f"score or label per sample; got {argument} shape {shape}."
        )
    return tensor

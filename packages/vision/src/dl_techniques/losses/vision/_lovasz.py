"""Lovasz-softmax and Lovasz hinge (Berman et al., 2018), vectorised.

The Jaccard loss of a set M of mispredicted pixels of a class, and its Lovasz
extension at the error vector m (m_(1) >= m_(2) >= ... sorted descending):

```
Delta_J(M) = |M| / |fg U M| = 1 - |fg - M| / |fg U M|
S_k        = the k pixels of largest error
g_k        = Delta_J(S_k) - Delta_J(S_(k-1))
loss       = sum_k m_(k) g_k
```

with ``|A|`` the sum of the pixel weights over ``A`` and ``fg - M`` the
foreground pixels outside M. A weight of 0 leaves a pixel out
(``ignore_index``); an integer weight ``k`` counts it ``k`` times. The sort and
the cumulative sums run in core's :func:`~dl_techniques.losses.core.ops.lovasz_absolute_errors`
for Lovasz-softmax (native on torch) and in :func:`lovasz_extension` for the
hinge, so the cost is ``O(P log P)`` per image or class and no Python loop in
this module runs over images or classes.
"""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops
from dl_techniques.losses.vision._segmentation_inputs import BinaryInputs, MultiClassInputs


def lovasz_extension(errors: Any, labels: Any, weights: Any) -> Any:
    """The Lovasz extension of the weighted Jaccard loss along the last axis.

    Args:
        errors: Non-negative errors ``m``, any shape ``(..., N)``.
        labels: Foreground indicator (0/1, or soft) of the same shape.
        weights: Pixel weights of the same shape.

    Returns:
        A tensor of shape ``(...)``. Only ``errors`` carries gradient.
    """
    sorted_errors, sorted_labels, sorted_weights = ops.sort_descending(errors, labels, weights)
    gradient = keras.ops.stop_gradient(jaccard_gradient(sorted_labels, sorted_weights))
    return keras.ops.sum(sorted_errors * gradient, axis=-1)


def jaccard_gradient(sorted_labels: Any, sorted_weights: Any) -> Any:
    """The increments ``g_k`` of the Jaccard loss along the sorted last axis."""
    foreground = sorted_weights * sorted_labels
    background = sorted_weights * (1.0 - sorted_labels)
    total = keras.ops.sum(foreground, axis=-1, keepdims=True)
    intersection = total - keras.ops.cumsum(foreground, axis=-1)
    union = total + keras.ops.cumsum(background, axis=-1)
    # An empty union (an absent class, only zero-weight pixels so far) is a
    # perfect match: Delta_J = 0.
    jaccard_loss = 1.0 - numerics.safe_divide(intersection, union, empty_value=1.0)
    previous = keras.ops.concatenate(
        [keras.ops.zeros_like(jaccard_loss[..., :1]), jaccard_loss[..., :-1]], axis=-1
    )
    return jaccard_loss - previous


def lovasz_softmax(inputs: MultiClassInputs, class_weights: list[float], per_image: bool) -> Any:
    """Lovasz-softmax: per class on ``|fg - p_c|``, mean over classes present.

    Args:
        inputs: ``MultiClassInputs`` with ``(B, P, C)`` probabilities and
            labels and ``(B, P)`` weights (or None).
        class_weights: C floats weighting the mean over present classes.
        per_image: One value per image ``(B,)`` instead of one pooled scalar.
    """
    probabilities, labels, weights = inputs.probabilities, inputs.labels, inputs.weights
    if not per_image:
        # One group holding every pixel of the batch: (1, B P, C).
        probabilities, labels = (
            keras.ops.reshape(tensor, (1, -1, tensor.shape[-1]))
            for tensor in (probabilities, labels)
        )
        weights = None if weights is None else keras.ops.reshape(weights, (1, -1))
    per_class = ops.lovasz_absolute_errors(labels, probabilities, weights)
    foreground = labels if weights is None else labels * keras.ops.expand_dims(weights, axis=-1)
    present = keras.ops.cast(keras.ops.sum(foreground, axis=1) > 0.0, per_class.dtype)
    if not per_image:
        per_class, present = per_class[0], present[0]
    weight_vector = keras.ops.convert_to_tensor(class_weights, dtype=per_class.dtype)
    counted = present * weight_vector
    total = keras.ops.sum(counted, axis=-1)
    weighted = keras.ops.sum(per_class * counted, axis=-1)
    return numerics.safe_divide(weighted, total, empty_value=0.0)


def lovasz_hinge(inputs: BinaryInputs, per_image: bool) -> Any:
    """Binary Lovasz hinge on ``max(0, 1 - logit * sign)``, ``sign = 2 fg - 1``.

    Args:
        inputs: ``BinaryInputs`` with ``(B, P)`` logits, labels and weights.
        per_image: One value per image ``(B,)`` instead of one pooled scalar.
    """
    signs = 2.0 * inputs.labels - 1.0
    valid = keras.ops.cast(inputs.weights > 0.0, inputs.logits.dtype)
    # The hinge is applied before sorting: it keeps the order of positive
    # errors, and the clipped ones contribute 0 wherever they sort.
    errors = keras.ops.relu(1.0 - inputs.logits * signs) * valid
    labels, weights = inputs.labels, inputs.weights
    if not per_image:
        errors, labels, weights = (
            keras.ops.reshape(tensor, (1, -1)) for tensor in (errors, labels, weights)
        )
    losses = lovasz_extension(errors, labels, weights)
    return losses if per_image else losses[0]

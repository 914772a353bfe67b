"""Pairwise distances and label masks shared by the metric-learning losses."""

from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation

DISTANCES = ("euclidean", "squared_euclidean", "cosine")

# The squared norm of an embedding is floored at this value before the
# square root of the cosine normalisation, so an all-zero embedding has a
# finite gradient.
_NORM_FLOOR = 1e-24


def pairwise_distances(embeddings: Any, distance: str) -> Any:
    """Returns the ``(B, B)`` matrix of distances between the rows of ``embeddings``.

    ``"squared_euclidean"`` is ``||a||^2 + ||b||^2 - 2 a.b`` floored at 0 with
    an exact zero diagonal; ``"euclidean"`` is its square root, taken only
    where it is positive so that the gradient at coincident embeddings is 0,
    not infinite; ``"cosine"`` is ``1 - cos(a, b)``.
    """
    if distance == "cosine":
        squared_norm = keras.ops.sum(keras.ops.square(embeddings), axis=-1, keepdims=True)
        unit = embeddings / keras.ops.sqrt(keras.ops.maximum(squared_norm, _NORM_FLOOR))
        return 1.0 - keras.ops.matmul(unit, keras.ops.transpose(unit))
    squared_norm = keras.ops.sum(keras.ops.square(embeddings), axis=-1)
    gram = keras.ops.matmul(embeddings, keras.ops.transpose(embeddings))
    squared = keras.ops.expand_dims(squared_norm, 1) + keras.ops.expand_dims(squared_norm, 0)
    squared = keras.ops.maximum(squared - 2.0 * gram, 0.0)
    off_diagonal = keras.ops.logical_not(
        keras.ops.eye(keras.ops.shape(embeddings)[0], dtype="bool")
    )
    squared = keras.ops.where(off_diagonal, squared, keras.ops.zeros_like(squared))
    if distance == "squared_euclidean":
        return squared
    positive = squared > 0.0
    root = keras.ops.sqrt(keras.ops.where(positive, squared, keras.ops.ones_like(squared)))
    return keras.ops.where(positive, root, keras.ops.zeros_like(squared))


def same_label_masks(labels: Any) -> tuple[Any, Any]:
    """Returns ``(positive, negative)`` boolean ``(B, B)`` masks of a label vector.

    ``positive[i, j]``: ``j != i`` shares the label of ``i``;
    ``negative[i, k]``: ``k`` has another label.
    """
    same = keras.ops.equal(keras.ops.expand_dims(labels, 1), keras.ops.expand_dims(labels, 0))
    not_self = keras.ops.logical_not(keras.ops.eye(keras.ops.shape(labels)[0], dtype="bool"))
    return keras.ops.logical_and(same, not_self), keras.ops.logical_not(same)


def labels_and_embeddings(owner: str, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Checks the shapes and values of ``(labels (B,), embeddings (B, D))`` and returns them.

    A trailing unit axis of the labels is dropped. Float labels must hold
    integers (checked on the first eager call).
    """
    labels = y_true
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = keras.ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 1 or len(y_pred.shape) != 2:
        raise ValueError(
            f"{owner}: `y_true` must be integer labels of shape (batch,) and `y_pred` "
            f"embeddings of shape (batch, dim); got y_true shape {shapes.static_shape(y_true)} "
            f"and y_pred shape {shapes.static_shape(y_pred)}."
        )
    shapes.check_same_batch(owner, {"y_true": labels, "y_pred": y_pred})
    validation.check_integers(owner, "y_true", labels)
    return labels, y_pred


def mine(
    owner: str, y_true: Any, y_pred: Any, sample_weight: Any, distance: str
) -> tuple[Any, Any, Any]:
    """Checks the inputs of a pair-mining loss; returns its distances and label masks.

    Returns:
        ``(distances, positive, negative)``, each ``(B, B)``: the
        :func:`pairwise_distances` of the embeddings and the
        :func:`same_label_masks` of the labels.

    Raises:
        ValueError: For a ``sample_weight``, or for inputs that
            :func:`labels_and_embeddings` rejects.
    """
    _reject_sample_weight(owner, sample_weight)
    labels, embeddings = labels_and_embeddings(owner, y_true, y_pred)
    return (pairwise_distances(embeddings, distance), *same_label_masks(labels))


def _reject_sample_weight(owner: str, sample_weight: Any) -> None:
    if sample_weight is not None:
        raise ValueError(
            f"{owner}: `sample_weight` is not supported: the loss is a mean over the pairs "
            "or triplets mined from the batch, which a per-sample weight does not define. "
            "Drop or repeat samples in the batch instead."
        )

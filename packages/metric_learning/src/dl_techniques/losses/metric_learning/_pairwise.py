"""Label masks and input checks shared by the metric-learning losses."""

from typing import Any

import keras

from dl_techniques.losses.core import ops, shapes, validation

DISTANCES = ops.PAIRWISE_DISTANCES


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
        :func:`~dl_techniques.losses.core.ops.pairwise_distances` of the embeddings and the
        :func:`same_label_masks` of the labels.

    Raises:
        ValueError: For a ``sample_weight``, or for inputs that
            :func:`labels_and_embeddings` rejects.
    """
    _reject_sample_weight(owner, sample_weight)
    labels, embeddings = labels_and_embeddings(owner, y_true, y_pred)
    return (ops.pairwise_distances(embeddings, distance), *same_label_masks(labels))


def _reject_sample_weight(owner: str, sample_weight: Any) -> None:
    if sample_weight is not None:
        raise ValueError(
            f"{owner}: `sample_weight` is not supported: the loss is a mean over the pairs "
            "or triplets mined from the batch, which a per-sample weight does not define. "
            "Drop or repeat samples in the batch instead."
        )

"""The TensorFlow kernels of the primitives that :func:`native_backends` lists for it.

The framework is imported inside :func:`kernels`, which the dispatch calls on the
first call that needs a kernel: nothing in a loss imports a framework at import.
"""

import math
from collections.abc import Callable
from typing import Any

from dl_techniques.losses.core.ops._cross_entropy import _valid_and_safe
from dl_techniques.losses.core.ops._overlap import _first_summed_axis, _row_block


def kernels() -> dict[str, Callable[..., Any]]:
    """The TensorFlow kernels by primitive name; the dispatch builds them once."""
    import tensorflow as tf

    def softmax_cross_entropy(labels, logits, ignore_index, label_smoothing):
        logits = tf.convert_to_tensor(logits)
        labels = tf.cast(labels, "int32")
        valid, safe_labels = _valid_and_safe(labels, ignore_index)
        values = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
        if label_smoothing:
            label_logits = tf.squeeze(
                tf.gather(logits, safe_labels[..., None], axis=-1, batch_dims=labels.shape.rank),
                axis=-1,
            )
            smoothing = tf.cast(label_smoothing, logits.dtype)
            values = values + smoothing * (label_logits - tf.reduce_mean(logits, axis=-1))
        if valid is None:
            return values
        return tf.where(valid, values, tf.zeros_like(values))

    def sigmoid_cross_entropy(labels, logits):
        logits = tf.convert_to_tensor(logits)
        labels = tf.cast(labels, logits.dtype)
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)

    def lgamma(x):
        return tf.math.lgamma(tf.convert_to_tensor(x))

    def sort(values):
        from tensorflow.compiler.tf2xla.python import xla

        return xla.sort(tf.stop_gradient(tf.convert_to_tensor(values)))

    def row_sums(values, first):
        shape = values.shape.as_list()
        axes = tuple(range(first, len(shape) - 1))
        if None in shape[first:]:
            return tf.reduce_sum(values, axis=axes)
        count, classes = math.prod(shape[first:-1]), shape[-1]
        block = _row_block(count, classes)
        if block == 1:
            return tf.reduce_sum(values, axis=axes)
        lead = tf.shape(values)[:first]
        wide = tf.reshape(values, tf.concat([lead, [count // block, block * classes]], 0))
        wide = tf.reduce_sum(wide, axis=-2)
        return tf.reduce_sum(tf.reshape(wide, tf.concat([lead, [block, classes]], 0)), axis=-2)

    def overlap_sums(labels, predictions, weights, axis):
        predictions = tf.convert_to_tensor(predictions)
        first = _first_summed_axis(predictions.shape.rank, axis)
        labels = tf.cast(labels, predictions.dtype)
        weighted_predictions, weighted_labels = predictions, labels
        if weights is not None:
            weights = tf.stop_gradient(tf.cast(weights, predictions.dtype))[..., None]
            weighted_predictions, weighted_labels = predictions * weights, labels * weights
        return (
            row_sums(weighted_predictions * labels, first),
            row_sums(weighted_predictions, first),
            row_sums(weighted_labels, first),
        )

    return {
        "lgamma": lgamma,
        "overlap_sums": overlap_sums,
        "sort": sort,
        "softmax_cross_entropy": softmax_cross_entropy,
        "sigmoid_cross_entropy": sigmoid_cross_entropy,
    }

"""Sorts along the last axis: ascending without gradient, and descending with carried tensors."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


def sort(values: Any) -> Any:
    """``values`` sorted ascending along the last axis, as constants (no gradient).

    Args:
        values: Integer or float tensor ``(..., N)``; NaN has no defined place.

    Returns:
        The sorted tensor, the shape and dtype of ``values``.
    """
    return _dispatch("sort", sort_reference)(values)


def sort_reference(values: Any) -> Any:
    """:func:`sort` in ``keras.ops``."""
    return keras.ops.stop_gradient(keras.ops.sort(values, axis=-1))


def sort_descending(values: Any, *carried: Any) -> tuple[Any, ...]:
    """Sorts ``values`` along the last axis, largest first, and permutes ``carried`` alike.

    Equal values keep their original order (a stable sort of ``-values``).
    The sorted values carry the gradient of ``values``; the carried tensors
    are permuted as data, without gradient.

    Args:
        values: Float tensor ``(..., N)``.
        *carried: Tensors of the same shape, permuted like ``values``.

    Returns:
        ``(sorted_values, *sorted_carried)``.
    """
    return _dispatch("sort_descending", sort_descending_reference)(values, *carried)


def sort_descending_reference(values: Any, *carried: Any) -> tuple[Any, ...]:
    """:func:`sort_descending` in ``keras.ops``: one argsort and one gather per tensor."""
    values = keras.ops.convert_to_tensor(values)
    order = keras.ops.argsort(-values, axis=-1)
    sorted_values = keras.ops.take_along_axis(values, order, axis=-1)
    return (
        sorted_values,
        *(
            keras.ops.stop_gradient(keras.ops.take_along_axis(tensor, order, axis=-1))
            for tensor in carried
        ),
    )

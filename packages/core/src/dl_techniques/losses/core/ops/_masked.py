"""A function of the masked pairs of rows or of the masked rows, a fill elsewhere.

``pairwise_where`` takes pairs of rows of two tensors, ``rowwise_where`` single rows.
"""

from collections.abc import Callable
from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


def pairwise_where(
    mask: Any,
    function: Callable[[Any, Any], Any],
    first: Any,
    second: Any,
    fill: float | tuple[float, ...] = 0.0,
) -> Any:
    """``function`` of each masked pair of rows, ``fill`` elsewhere: ``(B, N, M)``.

    ```
    out[b, i, j] = function(first[b, i], second[b, j])   where mask[b, i, j]
                 = fill                                   elsewhere
    ```

    ``function`` maps rows ``(..., F1)`` and ``(..., F2)`` to ``(...)``, each
    pair from its own two rows alone. ``first`` and ``second`` may each be a
    tuple of tensors (rows of several widths and dtypes, such as boxes and
    class ids); ``function`` then receives tuples of rows, in the same order.
    It may return a tuple of values, each of which becomes one ``(B, N, M)``
    output with its own ``fill``. The native path gathers the masked pairs (a
    dynamic count) and calls ``function`` on them only, so a sparse mask costs
    the pairs it holds rather than ``B N M``; the reference calls it on every
    pair by broadcasting (rows ``(B, N, 1, ...)`` and ``(B, 1, M, ...)``). Both
    paths apply the same elementwise operations to each pair; the gradient
    reaches ``first`` and ``second`` through the masked pairs.

    Args:
        mask: ``(B, N, M)`` boolean.
        function: ``function(first_rows, second_rows) -> values`` (or a tuple
            of values).
        first: ``(B, N, F1)``, or a tuple of ``(B, N, ...)`` tensors.
        second: ``(B, M, F2)``, or a tuple of ``(B, M, ...)`` tensors.
        fill: The value off the mask: one number, or one per value that
            ``function`` returns.

    Returns:
        ``(B, N, M)`` in the dtype of ``function``'s values, or a tuple of
        them where ``function`` returns a tuple.
    """
    return _dispatch("pairwise_where", pairwise_where_reference)(
        mask, function, first, second, fill
    )


def pairwise_where_reference(
    mask: Any,
    function: Callable[[Any, Any], Any],
    first: Any,
    second: Any,
    fill: float | tuple[float, ...] = 0.0,
) -> Any:
    """:func:`pairwise_where` in ``keras.ops``: ``function`` on every pair, then a ``where``."""
    first = keras.tree.map_structure(
        lambda rows: keras.ops.expand_dims(keras.ops.convert_to_tensor(rows), 2), first
    )
    second = keras.tree.map_structure(
        lambda rows: keras.ops.expand_dims(keras.ops.convert_to_tensor(rows), 1), second
    )
    return _each_output(
        function(first, second),
        fill,
        lambda values, value: keras.ops.where(mask, values, keras.ops.cast(value, values.dtype)),
    )


def rowwise_where(mask: Any, function: Callable[..., Any], *rows: Any, fill: float = 0.0) -> Any:
    """``function`` of each masked row, ``fill`` elsewhere: the shape of ``mask``.

    ```
    out[i] = function(rows[0][i], rows[1][i], ...)   where mask[i]
           = fill                                     elsewhere
    ```

    ``function`` maps rows ``(..., F1)``, ``(..., F2)``, ... to ``(...)``,
    each value from its own rows alone. The native path gathers the masked
    rows (a dynamic count) and calls ``function`` on them only, so a sparse
    mask costs the rows it holds; the reference calls it on every row. Both
    paths apply the same operations to each row; the gradient reaches the
    rows through the masked ones only.

    Args:
        mask: Boolean, shape ``S``.
        function: ``function(*row_values) -> values``.
        *rows: Tensors of shape ``S + (F,)`` (or more trailing axes).
        fill: The value off the mask.

    Returns:
        A tensor of shape ``S`` in the dtype of ``function``'s values.
    """
    return _dispatch("rowwise_where", rowwise_where_reference)(mask, function, *rows, fill=fill)


def rowwise_where_reference(
    mask: Any, function: Callable[..., Any], *rows: Any, fill: float = 0.0
) -> Any:
    """:func:`rowwise_where` in ``keras.ops``: ``function`` on every row, then a ``where``."""
    values = function(*(keras.ops.convert_to_tensor(tensor) for tensor in rows))
    return keras.ops.where(mask, values, keras.ops.cast(fill, values.dtype))


def _each_output(values, fill, place):
    """``place(values, fill)`` for one value, or per value and fill of a tuple."""
    if not isinstance(values, tuple):
        return place(values, fill)
    fills = fill if isinstance(fill, tuple) else (fill,) * len(values)
    if len(fills) != len(values):
        raise ValueError(
            f"pairwise_where: {len(fills)} fill values for the {len(values)} values that "
            "`function` returns; give one fill, or one per value."
        )
    return tuple(place(value, value_fill) for value, value_fill in zip(values, fills, strict=True))

"""Rows scaled to unit Euclidean norm."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch

NORM_EPSILON = 1e-12
"""The floor of the norm that :func:`l2_normalize` divides by."""


def l2_normalize(values: Any) -> Any:
    """Each row along the last axis divided by its L2 norm, floored at 1e-12.

    ```
    u = x / max(||x||_2, 1e-12)
    ```

    A zero row stays zero. The torch kernel is the computation of
    ``torch.nn.functional.normalize``: one norm and one division, where the
    reference runs five operations and their derivatives.

    Args:
        values: Float tensor ``(..., D)``.

    Returns:
        A tensor of the shape and dtype of ``values``.
    """
    return _dispatch("l2_normalize", l2_normalize_reference)(values)


def l2_normalize_reference(values: Any) -> Any:
    """:func:`l2_normalize` in ``keras.ops``: ``x rsqrt(max(sum x^2, 1e-24))``."""
    values = keras.ops.convert_to_tensor(values)
    squared_norm = keras.ops.sum(keras.ops.square(values), axis=-1, keepdims=True)
    return values * keras.ops.rsqrt(keras.ops.maximum(squared_norm, NORM_EPSILON**2))

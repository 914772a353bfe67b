"""Static shape helpers shared by every family: read, compare and check shapes.

Shapes are read from ``tensor.shape`` without running anything, so these work
on eager tensors and inside traced functions alike (``None`` where a size is
unknown at trace time) and may run on every call.
"""

from collections.abc import Sequence
from typing import Any

import keras

Shape = tuple[int | None, ...]


def static_shape(tensor: Any) -> Shape:
    """Returns the static shape of ``tensor`` as a tuple, ``None`` where unknown."""
    return tuple(None if size is None else int(size) for size in tensor.shape)


def shapes_match(first: Sequence[int | None], second: Sequence[int | None]) -> bool:
    """Whether two static shapes can be equal, ``None`` matching any size."""
    return len(first) == len(second) and all(
        a is None or b is None or a == b for a, b in zip(first, second, strict=True)
    )


def sizes_differ(first: int | None, second: int | None) -> bool:
    """Whether two static sizes are both known and different."""
    return first is not None and second is not None and first != second


def squeeze_trailing_unit_axis(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Drops a trailing axis of length 1 from whichever tensor has one axis more.

    Keras' own losses accept ``(B, H)`` against ``(B, H, 1)``: targets arrive
    as ``(B,)`` from datasets and predictions as ``(B, 1)`` from a
    ``Dense(1)`` head, and both mean the same thing.
    """
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        y_true = keras.ops.squeeze(y_true, axis=-1)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        y_pred = keras.ops.squeeze(y_pred, axis=-1)
    return y_true, y_pred


def check_same_shape(
    owner: str,
    y_true: Any,
    y_pred: Any,
    true_argument: str = "y_true",
    pred_argument: str = "y_pred",
) -> None:
    """Raises ``ValueError`` when the two static shapes cannot be equal."""
    if y_true.shape == y_pred.shape:
        return
    true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
    if not shapes_match(true_shape, pred_shape):
        raise ValueError(
            f"{owner}: `{true_argument}` and `{pred_argument}` must have the same shape; got "
            f"{true_argument} shape {true_shape} and {pred_argument} shape {pred_shape}."
        )


def check_min_rank(owner: str, argument: str, tensor: Any, min_rank: int, layout: str) -> None:
    """Raises ``ValueError`` when ``tensor`` has fewer than ``min_rank`` axes.

    ``layout`` describes the expected shape in the message, e.g. ``(batch, horizon)``.
    """
    if len(tensor.shape) < min_rank:
        raise ValueError(
            f"{owner}: `{argument}` must have shape {layout}; got shape {static_shape(tensor)}."
        )


def check_same_batch(owner: str, tensors: dict[str, Any]) -> None:
    """Raises ``ValueError`` when the named tensors' known batch sizes differ.

    Args:
        owner: The loss, named in the message.
        tensors: Argument name (as the message should show it) to tensor.
    """
    batches = {name: static_shape(tensor)[:1] for name, tensor in tensors.items()}
    known = {size[0] for size in batches.values() if size and size[0] is not None}
    if len(known) > 1:
        shapes = ", ".join(f"{name} shape {static_shape(t)}" for name, t in tensors.items())
        raise ValueError(f"{owner}: the inputs must share the batch size; got {shapes}.")

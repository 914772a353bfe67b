"""Row sums of softplus over a matrix of logits scored one block of columns at a time."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


def blockwise_softplus_sums(
    rows: Any,
    columns: Any,
    scale: float | None,
    bias: float | None,
    block_size: int,
) -> Any:
    """``sum_j softplus(scale * rows_i . columns_j + bias)`` per row, in blocks of columns.

    ```
    out[i] = sum_j softplus(s <r_i, c_j> + b)
    d out[i] / d r_i = s sum_j sigmoid(logit_ij) c_j
    d out[i] / d c_j = s sigmoid(logit_ij) r_i
    ```

    Neither pass holds more than one ``(B, block_size)`` block of logits
    (SigLIP's chunked form, Zhai et al. 2023). The reference rematerialises
    each block in the backward pass (``keras.remat``). The torch kernel adds
    each block's row gradient ``sigmoid(logits) @ columns`` to a ``(B, D)``
    sum in the forward pass, where the block is at hand, so the backward pass
    recomputes blocks only for the columns' gradient: with the rows alone
    trainable, one matrix product per block fewer.

    Args:
        rows: ``(B, D)`` float.
        columns: ``(N, D)`` float; ``N`` must be known when tracing.
        scale: The factor ``s`` of the similarities, or ``None`` for none.
        bias: The offset ``b`` of the logits, or ``None`` for none.
        block_size: Positive int, the columns per block.

    Returns:
        ``(B,)`` in the dtype of ``rows``.
    """
    return _dispatch("blockwise_softplus_sums", blockwise_softplus_sums_reference)(
        rows, columns, scale, bias, block_size
    )


def blockwise_softplus_sums_reference(
    rows: Any,
    columns: Any,
    scale: float | None,
    bias: float | None,
    block_size: int,
) -> Any:
    """:func:`blockwise_softplus_sums` in ``keras.ops``, each block under ``keras.remat``."""
    rows, columns = keras.ops.convert_to_tensor(rows), keras.ops.convert_to_tensor(columns)

    # The rows are an argument, not a closure: TensorFlow's remat
    # differentiates only with respect to the arguments.
    def block_sums(block: Any, block_rows: Any) -> Any:
        logits = logits_of(keras.ops.matmul(block_rows, keras.ops.transpose(block)), scale, bias)
        return keras.ops.sum(keras.ops.softplus(logits), axis=-1)

    recomputed = keras.remat(block_sums)
    total = None
    for start in range(0, columns.shape[0], block_size):
        sums = recomputed(columns[start : start + block_size], rows)
        total = sums if total is None else total + sums
    return total


def logits_of(similarities: Any, scale: float | None, bias: float | None) -> Any:
    """``scale * similarities + bias``, each left out where it is ``None``."""
    if scale is not None:
        similarities = similarities * scale
    if bias is not None:
        similarities = similarities + bias
    return similarities

"""Sinkhorn-Knopp balancing of teacher outputs, in the log domain."""

import math

import keras

from dl_techniques.losses.core.distributed import all_gather, replica_count


def sinkhorn_knopp_assignments(teacher_logits, teacher_temp, iterations=3):
    """Returns the balanced soft assignments of teacher rows to prototypes.

    Starting from ``Q = exp(teacher_logits / teacher_temp)`` over all rows of
    every replica, alternately rescales each prototype (column) to total mass
    ``1 / K`` and each row to mass ``1 / R`` (``R`` rows in all), then scales
    the rows back to sum to 1, as dinov2's ``sinkhorn_knopp_teacher``:

    ```
    Q <- Q / sum_rows(Q) / K      (per prototype, over all replicas)
    Q <- Q / sum_protos(Q) / R    (per row)
    ```

    The iterations run on ``log Q`` with logsumexp normalisers, so that a
    small temperature neither overflows ``exp`` nor empties a prototype.

    Args:
        teacher_logits: Float tensor ``(rows, K)``, this replica's rows, with
            a static ``K``.
        teacher_temp: Positive scalar tensor or float.
        iterations: Number of column/row rescaling rounds.

    Returns:
        A ``(rows, K)`` tensor whose rows are distributions over prototypes.
    """
    log_prototypes = math.log(teacher_logits.shape[-1])
    total_rows = keras.ops.shape(teacher_logits)[0] * replica_count()
    log_rows = keras.ops.log(keras.ops.cast(total_rows, teacher_logits.dtype))
    log_q = teacher_logits / teacher_temp
    for _ in range(iterations):
        log_q = log_q - _logsumexp_over_all_rows(log_q) - log_prototypes
        log_q = log_q - keras.ops.logsumexp(log_q, axis=1, keepdims=True) - log_rows
    return keras.ops.exp(log_q + log_rows)


def _logsumexp_over_all_rows(log_q):
    # Each replica's per-prototype logsumexp, gathered and combined: the
    # prototype totals then cover every replica's rows, as dinov2's all-reduce.
    local = keras.ops.logsumexp(log_q, axis=0, keepdims=True)
    return keras.ops.logsumexp(all_gather(local, axis=0), axis=0, keepdims=True)

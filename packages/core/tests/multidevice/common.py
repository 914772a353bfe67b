"""Data and batch-dependent objectives shared by the multi-device scripts.

The objectives are written per replica: each sees its local slice and reaches
the rest of the batch only through ``all_gather`` / ``all_mean``.
"""

import numpy as np
from keras import ops

from dl_techniques.losses.core.distributed import all_gather, all_mean

GLOBAL_BATCH = 8
STEPS = 3
LEARNING_RATE = 0.1
TEMPERATURE = 2.0


def problem(replicas):
    """Fixed arrays for a run over ``replicas`` slices, as float32 numpy."""
    rng = np.random.default_rng(0)
    arrays = {
        "batch": rng.normal(size=(GLOBAL_BATCH, 3)),
        "columns": rng.normal(size=(2, 2 * replicas)),
        "x": rng.normal(size=(GLOBAL_BATCH, 3)),
        "y": rng.normal(size=(GLOBAL_BATCH, 2)),
        "kernel": rng.normal(size=(3, 2)),
        "bias": rng.normal(size=(2,)),
    }
    return {name: value.astype("float32") for name, value in arrays.items()}


def as_lists(arrays):
    """The arrays as JSON-ready lists, with the temperature the objectives use."""
    return {"temperature": TEMPERATURE, **{name: value.tolist() for name, value in arrays.items()}}


def contrastive_sum(local_rows):
    """sum over local rows j of logsumexp_i(x_j . x_i / T), i over the whole batch."""
    everyone = all_gather(local_rows)
    similarity = ops.matmul(local_rows, ops.transpose(everyone)) / TEMPERATURE
    return ops.sum(ops.logsumexp(similarity, axis=-1))


def centred_contrastive_loss(y_true, y_pred):
    """Per local sample: squared error plus a contrastive term on centred outputs.

    The centre is the global batch mean and the contrast runs over the whole
    batch, so every value depends on every replica's slice.
    """
    centre = all_mean(ops.mean(y_pred, axis=0))
    centred = y_pred - centre
    everyone = all_gather(centred)
    similarity = ops.matmul(centred, ops.transpose(everyone)) / TEMPERATURE
    squared_error = ops.sum(ops.square(y_true - y_pred), axis=-1)
    return squared_error + ops.logsumexp(similarity, axis=-1)

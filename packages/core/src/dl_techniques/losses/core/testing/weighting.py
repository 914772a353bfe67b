"""The ``sample_weight`` check, one branch per declared semantics."""

import keras
import numpy as np

from dl_techniques.losses.core.testing._support import assert_close, fail, loss_value

_WEIGHT_SEED = 20240611


def check_sample_weight(case):
    """Checks the declared ``sample_weight`` semantics (see :class:`LossCase`)."""
    if case.sample_weight == "rejected":
        return _check_sample_weight_rejected(case)
    if case.sample_weight == "batch":
        return _check_sample_weight_batch(case)
    return _check_sample_weight_per_sample(case)


def _check_sample_weight_per_sample(case):
    batch = case.batch_size
    per_sample_loss = case.make_loss()
    per_sample_loss.reduction = None
    per_sample = loss_value(per_sample_loss, case.y_true, case.y_pred)
    if per_sample.shape != (batch,):
        fail(
            case,
            f"with reduction=None the loss has shape {per_sample.shape}, expected "
            f"({batch},): a per-sample loss returns one value per sample so that Keras "
            "applies sample_weight and the reduction. Declare sample_weight='batch' or "
            "'rejected' for a batch-level loss.",
        )
    averaged_loss = case.make_loss()
    averaged_loss.reduction = "sum_over_batch_size"
    assert_close(
        case,
        loss_value(averaged_loss, case.y_true, case.y_pred),
        np.mean(per_sample),
        "the unweighted loss is not the mean of the per-sample values",
    )
    weights = np.random.default_rng(_WEIGHT_SEED).uniform(0.25, 2.0, size=batch).astype(np.float32)
    assert_close(
        case,
        loss_value(averaged_loss, case.y_true, case.y_pred, sample_weight=weights),
        np.sum(weights.astype(np.float64) * per_sample) / batch,
        "with random sample_weight w the loss is not sum(w * per_sample) / batch",
    )
    return "one value per sample; sample_weight weights each sample"


def _check_sample_weight_batch(case):
    batch = case.batch_size
    if batch < 2:
        fail(case, f"checking batch-level sample_weight needs at least 2 rows, got {batch}.")
    loss = case.make_loss()
    rows = np.arange(batch)
    ones = np.ones(batch, dtype=np.float32)
    assert_close(
        case,
        loss_value(loss, case.y_true, case.y_pred, sample_weight=ones),
        loss_value(loss, case.y_true, case.y_pred),
        "sample_weight of ones changes the loss",
    )
    doubled = ones.copy()
    doubled[0] = 2.0
    repeated = np.concatenate([[0], rows])
    assert_close(
        case,
        loss_value(loss, case.y_true, case.y_pred, sample_weight=doubled),
        loss_value(loss, _take_rows(case.y_true, repeated), _take_rows(case.y_pred, repeated)),
        "weight 2 on row 0 differs from repeating row 0",
    )
    dropped = ones.copy()
    dropped[0] = 0.0
    assert_close(
        case,
        loss_value(loss, case.y_true, case.y_pred, sample_weight=dropped),
        loss_value(loss, _take_rows(case.y_true, rows[1:]), _take_rows(case.y_pred, rows[1:])),
        "weight 0 on row 0 differs from dropping row 0",
    )
    return "batch-level sample_weight: weight 2 repeats a row, weight 0 drops it"


def _check_sample_weight_rejected(case):
    loss = case.make_loss()
    ones = np.ones(case.batch_size, dtype=np.float32)
    try:
        loss_value(loss, case.y_true, case.y_pred, sample_weight=ones)
    except ValueError as error:
        return f"sample_weight is rejected: {error}".splitlines()[0]
    except Exception as error:
        fail(case, f"passing sample_weight raised {type(error).__name__}, not ValueError: {error}")
    fail(case, "passing sample_weight was accepted although the case declares it 'rejected'.")


def _take_rows(structure, rows):
    return keras.tree.map_structure(lambda leaf: np.asarray(leaf)[rows], structure)

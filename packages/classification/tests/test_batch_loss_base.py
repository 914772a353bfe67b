"""The family's batch-level losses share core's BatchLoss mechanics."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.classification import (
    AccuracyLoss,
    AnyLoss,
    BalancedAccuracyLoss,
    CombinedCalibrationLoss,
    DecoupledInformationLoss,
    F1Loss,
    FBetaLoss,
    GeometricMeanLoss,
    GoodhartAwareLoss,
    MCCLoss,
    PrecisionLoss,
    RecallLoss,
    SpecificityLoss,
    SpiegelhalterZLoss,
)
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import as_numpy

BATCH_LEVEL = [
    AccuracyLoss,
    AnyLoss,
    BalancedAccuracyLoss,
    CombinedCalibrationLoss,
    DecoupledInformationLoss,
    F1Loss,
    FBetaLoss,
    GeometricMeanLoss,
    GoodhartAwareLoss,
    MCCLoss,
    PrecisionLoss,
    RecallLoss,
    SpecificityLoss,
    SpiegelhalterZLoss,
]


@pytest.mark.parametrize("loss_class", BATCH_LEVEL, ids=lambda cls: cls.__name__)
def test_batch_level_losses_use_the_core_call(loss_class):
    assert issubclass(loss_class, BatchLoss)
    assert loss_class.__call__ is BatchLoss.__call__


@pytest.mark.parametrize("loss_class", [DecoupledInformationLoss, GoodhartAwareLoss])
def test_information_losses_reduce_in_float32_and_return_the_loss_dtype(loss_class):
    y_true = np.eye(3, dtype="float32")
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 1.0, 3.0]], "float32")
    weights = np.array([1.0, 2.0, 0.5], "float32")
    half = loss_class(dtype="float16")(y_true, logits, sample_weight=weights)
    full = loss_class()(y_true, logits, sample_weight=weights)
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    np.testing.assert_allclose(as_numpy(half), as_numpy(full), rtol=1e-3)


@pytest.mark.parametrize("use_squared", [True, False])
def test_spiegelhalter_z_loss_is_zero_with_finite_gradient_for_zero_weights(use_squared):
    y_true = np.array([1.0, 0.0, 1.0], "float32")
    probs = np.array([0.8, 0.3, 0.4], "float32")
    loss = SpiegelhalterZLoss(use_squared=use_squared)
    weights = keras.ops.zeros((3,))
    assert float(as_numpy(loss(y_true, probs, sample_weight=weights))) == 0.0
    gradient = as_numpy(
        input_gradient(
            lambda w: loss(y_true, probs, sample_weight=w), keras.ops.convert_to_tensor(weights)
        )
    )
    assert np.all(np.isfinite(gradient))

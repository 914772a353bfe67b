import inspect

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.vision.conformance.region import conformance_cases


class TestRegionLossConformance(LossConformanceTests):
    cases = conformance_cases()


@pytest.mark.parametrize(
    "case",
    [
        case
        for case in conformance_cases()
        if "include_background" in inspect.signature(case.loss_class).parameters
    ],
    ids=lambda case: case.case_id,
)
def test_a_nan_background_logit_gives_a_nan_loss_without_the_background(case):
    # The background's softmax share is dropped; a NaN logit must still make
    # the other classes' probabilities NaN (TensorFlow's eager softmax gave 0).
    logits = np.array(case.y_pred, dtype="float32")
    logits[0, 0, 0, 0] = np.nan
    loss = case.loss_class(**{**case.init_kwargs, "include_background": False})

    assert np.isnan(keras.ops.convert_to_numpy(loss(case.y_true, logits)))

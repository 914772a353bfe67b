"""The batch-level generative losses share core's BatchLoss mechanics."""

import pytest

from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.generative import (
    HRMLoss,
    NanoVLMLoss,
    StableMaxCrossEntropy,
    WassersteinGradientPenaltyLoss,
    WassersteinLoss,
)

BATCH_LOSSES = (
    HRMLoss,
    NanoVLMLoss,
    StableMaxCrossEntropy,
    WassersteinGradientPenaltyLoss,
    WassersteinLoss,
)


@pytest.mark.parametrize("loss_class", BATCH_LOSSES, ids=lambda cls: cls.__name__)
def test_batch_level_losses_write_only_their_batch_value(loss_class):
    assert issubclass(loss_class, BatchLoss)
    assert "__call__" not in vars(loss_class)
    assert "batch_value" in vars(loss_class)


def test_only_the_generator_wasserstein_loss_is_per_sample():
    assert WassersteinLoss(for_critic=False).is_per_sample()
    assert not WassersteinLoss(for_critic=True).is_per_sample()

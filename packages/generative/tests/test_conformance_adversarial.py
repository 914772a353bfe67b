import keras

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.generative.conformance.adversarial import conformance_cases


class TestAdversarialConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_both_losses_in_both_roles():
    roles = {(case.loss_class.__name__, case.sample_weight) for case in conformance_cases()}
    assert roles == {
        ("HingeGANLoss", "batch"),
        ("HingeGANLoss", "per_sample"),
        ("NonSaturatingGANLoss", "batch"),
        ("NonSaturatingGANLoss", "per_sample"),
    }
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

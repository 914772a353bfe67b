import keras

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.generative.conformance.wasserstein import conformance_cases

WASSERSTEIN_LOSSES = ("WassersteinLoss", "WassersteinGradientPenaltyLoss")


class TestWassersteinConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_every_wasserstein_loss():
    assert sorted({case.loss_class.__name__ for case in conformance_cases()}) == sorted(
        WASSERSTEIN_LOSSES
    )


def test_weighting_modes_match_the_documented_semantics():
    modes = {case.case_id: case.sample_weight for case in conformance_cases()}
    assert modes == {
        "wasserstein_critic_unbalanced": "batch",
        "wasserstein_generator": "per_sample",
        "wgan_gp_critic_plus_minus_one_labels": "rejected",
    }


def test_keras_registered_names_use_the_library_package():
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

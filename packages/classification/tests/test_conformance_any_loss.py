import keras

from dl_techniques.losses.classification.conformance.any_loss import conformance_cases
from dl_techniques.losses.core import registry
from dl_techniques.losses.core.testing import LossConformanceTests

PUBLIC_NAMES = (
    "AnyLoss",
    "AccuracyLoss",
    "PrecisionLoss",
    "RecallLoss",
    "SpecificityLoss",
    "F1Loss",
    "FBetaLoss",
    "BalancedAccuracyLoss",
    "GeometricMeanLoss",
    "MCCLoss",
)


class TestAnyLossConformance(LossConformanceTests):
    cases = conformance_cases()


def test_conformance_cases_cover_every_anyloss_family_loss():
    assert sorted(case.loss_class.__name__ for case in conformance_cases()) == sorted(PUBLIC_NAMES)


def test_every_case_declares_batch_level_sample_weight():
    assert {case.sample_weight for case in conformance_cases()} == {"batch"}


def test_entry_points_resolve_to_the_module_classes_and_keras_names():
    for name in PUBLIC_NAMES:
        found = registry.entry(name)
        assert found.distribution == "dl-techniques-losses-classification"
        cls = registry.get(name)
        assert cls.__name__ == name
        assert keras.saving.get_registered_name(cls) == f"dl_techniques>{name}"

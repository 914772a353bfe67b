import keras

import dl_techniques.losses
from dl_techniques.losses.classification.conformance.capsule_information import conformance_cases
from dl_techniques.losses.core import registry
from dl_techniques.losses.core.testing import LossConformanceTests

PUBLIC_NAMES = (
    "CapsuleMarginLoss",
    "FocalUncertaintyLoss",
    "DecoupledInformationLoss",
    "GoodhartAwareLoss",
)


class TestCapsuleInformationConformance(LossConformanceTests):
    cases = conformance_cases()


def test_conformance_cases_cover_every_loss_of_the_group():
    assert sorted(case.loss_class.__name__ for case in conformance_cases()) == sorted(PUBLIC_NAMES)


def test_entry_points_resolve_to_the_module_classes():
    classes = {case.loss_class.__name__: case.loss_class for case in conformance_cases()}
    for name in PUBLIC_NAMES:
        assert registry.entry(name).distribution == "dl-techniques-losses-classification"
        assert registry.get(name) is classes[name]
        assert getattr(dl_techniques.losses, name) is classes[name]


def test_keras_registered_names_use_the_library_package():
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

import keras
import numpy as np

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.generative.conformance.language import conformance_cases

LANGUAGE_LOSSES = ("HRMLoss", "NanoVLMLoss", "StableMaxCrossEntropy")


class TestLanguageConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_every_language_loss():
    assert sorted({case.loss_class.__name__ for case in conformance_cases()}) == list(
        LANGUAGE_LOSSES
    )


def test_every_case_weights_inside_its_token_mean():
    assert {case.sample_weight for case in conformance_cases()} == {"batch"}


def test_every_case_ignores_some_of_its_labels():
    for case in conformance_cases():
        labels = case.y_true["labels"] if isinstance(case.y_true, dict) else case.y_true
        assert np.any(labels == case.init_kwargs["ignore_index"]), case.case_id


def test_keras_registered_names_use_the_library_package():
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

import keras

from dl_techniques.losses.classification.conformance.calibration import conformance_cases
from dl_techniques.losses.core.testing import LossConformanceTests

CALIBRATION_LOSSES = ("BrierScoreLoss", "SpiegelhalterZLoss", "CombinedCalibrationLoss")


class TestCalibrationConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_every_calibration_loss():
    assert sorted({case.loss_class.__name__ for case in conformance_cases()}) == sorted(
        CALIBRATION_LOSSES
    )


def test_batch_level_losses_declare_batch_weighting():
    modes = {case.loss_class.__name__: case.sample_weight for case in conformance_cases()}
    assert modes == {
        "BrierScoreLoss": "per_sample",
        "SpiegelhalterZLoss": "batch",
        "CombinedCalibrationLoss": "batch",
    }


def test_keras_registered_names_use_the_library_package():
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

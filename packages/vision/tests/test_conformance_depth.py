import keras

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.vision.affine_invariant_loss import AffineInvariantLoss
from dl_techniques.losses.vision.conformance.depth import conformance_cases


class TestDepthConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_both_ways_of_marking_invalid_pixels():
    targets = [case.y_true for case in conformance_cases()]
    assert any(isinstance(target, dict) for target in targets)
    assert any(not isinstance(target, dict) for target in targets)
    assert all(case.loss_class is AffineInvariantLoss for case in conformance_cases())


def test_keras_registered_name_uses_the_library_package():
    registered = keras.saving.get_registered_name(AffineInvariantLoss)
    assert registered == "dl_techniques>AffineInvariantLoss"

import keras

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.self_supervised.conformance.redundancy import conformance_cases


class TestRedundancyConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_vicreg_and_barlow_twins_with_the_library_package():
    names = {case.loss_class.__name__ for case in conformance_cases()}
    assert names == {"VICRegLoss", "BarlowTwinsLoss"}
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

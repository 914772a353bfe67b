import keras

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.self_supervised.conformance.views import conformance_cases


class TestViewsConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_the_two_view_losses_with_the_library_package():
    names = {case.loss_class.__name__ for case in conformance_cases()}
    assert names == {"NTXentLoss"}
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

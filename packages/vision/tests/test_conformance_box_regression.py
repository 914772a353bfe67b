from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.vision.conformance.box_regression import conformance_cases


class TestBoxRegressionConformance(LossConformanceTests):
    cases = conformance_cases()

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.vision.conformance.region import conformance_cases


class TestRegionLossConformance(LossConformanceTests):
    cases = conformance_cases()

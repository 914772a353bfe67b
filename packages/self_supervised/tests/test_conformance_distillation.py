from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.self_supervised.conformance.distillation import conformance_cases


class TestDistillationConformance(LossConformanceTests):
    cases = conformance_cases()

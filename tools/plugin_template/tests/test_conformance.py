"""Core's conformance kit over the cases the plugin declares."""

from dl_techniques.losses.core.testing import LossConformanceTests

from acme_losses.conformance import conformance_cases


class TestAcmeConformance(LossConformanceTests):
    cases = conformance_cases()

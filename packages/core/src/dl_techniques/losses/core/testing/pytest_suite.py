"""The conformance kit as a pytest base class.

Pytest is not imported here: the class only names fixtures (``tmp_path``) and
implements the ``pytest_generate_tests`` hook that pytest looks up on test
classes, so the CLI can import the kit without pytest installed.
"""

from dl_techniques.losses.core.testing import checks, fresh_process


class LossConformanceTests:
    """Every conformance check as a test, parametrized over ``cases``.

    Subclass it in a test module, under a name pytest collects, and list the
    cases:

    ```python
    from dl_techniques.losses.core.testing import LossCase, LossConformanceTests

    class TestAcmeLossConformance(LossConformanceTests):
        cases = [
            LossCase(
                AcmeLoss,
                {"margin": 0.5},
                y_true=np.array([[0.0, 1.0], [1.0, 0.0]]),
                y_pred=np.array([[0.2, 0.7], [0.9, 0.3]]),
                invalid_kwargs=[{"margin": -1.0}],
            ),
        ]
    ```

    Each test method named after a check runs once per case (the test id is
    the case id); ``test_fresh_process_reload`` runs once for all cases in a
    single subprocess.
    """

    cases = ()

    def pytest_generate_tests(self, metafunc):
        if "case" not in metafunc.fixturenames:
            return
        if not self.cases:
            raise ValueError(
                f"{type(self).__name__}: set the class attribute `cases` to a "
                "non-empty list of LossCase."
            )
        metafunc.parametrize("case", list(self.cases), ids=[case.case_id for case in self.cases])

    def test_config_roundtrip(self, case):
        checks.check_config_roundtrip(case)

    def test_keras_serialization(self, case):
        checks.check_keras_serialization(case)

    def test_saved_model(self, case, tmp_path):
        checks.check_saved_model(case, tmp_path)

    def test_jit_fit_step(self, case):
        checks.check_jit_fit_step(case)

    def test_finite_value_and_gradient(self, case):
        checks.check_finite_value_and_gradient(case)

    def test_half_precision(self, case):
        checks.check_half_precision(case)

    def test_sample_weight(self, case):
        checks.check_sample_weight(case)

    def test_invalid_hyperparameters(self, case):
        checks.check_invalid_hyperparameters(case)

    def test_fresh_process_reload(self, tmp_path):
        fresh_process.check_fresh_process_reload(self.cases, tmp_path)

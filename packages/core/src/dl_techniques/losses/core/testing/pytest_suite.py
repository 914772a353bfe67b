"""The conformance kit as a pytest base class.

Pytest is not imported here: the class only names fixtures (``tmp_path``) and
implements the ``pytest_generate_tests`` hook that pytest looks up on test
classes, so the CLI can import the kit without pytest installed.
"""

from typing import Any

from dl_techniques.losses.core.testing import checks, fresh_process

# Fresh-process outcomes by ``id(case)``: one subprocess reloads the cases of
# every collected conformance class, since each new interpreter pays for
# importing Keras and its backend again.
_RELOAD_OUTCOMES: dict[int, tuple[bool, str]] = {}
_EXTRA_RELOAD_CASES: list[Any] = []
# A compiled fit and a .keras round trip exercise a loss class's training and
# saving path, which its constructor arguments do not change: they run on the
# first case of each loss class, like the fresh-process reload.
_ONCE_PER_LOSS_CLASS = ("test_jit_fit_step", "test_saved_model")


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
    the case id), except the compiled fit and the saved-model round trip,
    which run on the first case of each loss class; ``test_fresh_process_reload``
    runs once per test class, and the first test class to run it reloads the
    first case of each loss class of every collected subclass in a single
    subprocess.
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
        cases = list(self.cases)
        if metafunc.function.__name__ in _ONCE_PER_LOSS_CLASS:
            cases = first_case_per_loss_class(cases)
        metafunc.parametrize("case", cases, ids=[case.case_id for case in cases])

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

    def test_fresh_process_reload(self, tmp_path_factory):
        check_batched_fresh_process_reload(first_case_per_loss_class(self.cases), tmp_path_factory)


def batched_reload_case(case: Any) -> Any:
    """Adds ``case`` to the fresh-process reload batch of this test process and returns it.

    For a model outside a conformance class (a composite loss, a wrapper):
    called at a test module's top level, the case reloads in the one
    subprocess that reloads every collected conformance class, instead of a
    subprocess of its own (each new interpreter imports Keras and its backend
    again). A test then checks it with :func:`check_batched_fresh_process_reload`.
    """
    _EXTRA_RELOAD_CASES.append(case)
    return case


def check_batched_fresh_process_reload(cases: list[Any], tmp_path_factory: Any) -> None:
    """Checks that ``cases`` reload in a fresh process, batched with every collected case.

    The first call reloads the cases of every collected conformance class and
    of :func:`batched_reload_case` in a single subprocess; later calls read
    the outcomes. A case that failed in a batch started by another test
    (without this test's fixtures: a plugin put on ``sys.path``, say) reloads
    again here, and this run decides.

    Raises:
        AssertionError: Listing every case of ``cases`` that did not reload.
    """
    if any(id(case) not in _RELOAD_OUTCOMES for case in cases):
        pending = [case for case in _collected_cases() if id(case) not in _RELOAD_OUTCOMES]
        pending += [case for case in cases if id(case) not in _RELOAD_OUTCOMES]
        pending = list({id(case): case for case in pending}.values())
        _reload(pending, tmp_path_factory)
    elif any(not _RELOAD_OUTCOMES[id(case)][0] for case in cases):
        _reload(cases, tmp_path_factory)
    failures = [
        f"{case.case_id}: {_RELOAD_OUTCOMES[id(case)][1]}"
        for case in cases
        if not _RELOAD_OUTCOMES[id(case)][0]
    ]
    if failures:
        raise AssertionError(
            f"{len(failures)} of {len(cases)} case(s) did not reload in a fresh process:\n"
            + "\n".join(failures)
        )


def first_case_per_loss_class(cases):
    """The first of ``cases`` for each distinct ``loss_class``, in order."""
    first: dict[type, Any] = {}
    for case in cases:
        first.setdefault(case.loss_class, case)
    return list(first.values())


def _reload(cases, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("fresh_process_reload")
    outcomes = fresh_process.fresh_process_outcomes(cases, work_dir)
    _RELOAD_OUTCOMES.update(zip(map(id, cases), outcomes, strict=True))


def _collected_cases():
    """The cases of :func:`batched_reload_case` and of every conformance class defined so far."""
    found = list(_EXTRA_RELOAD_CASES)
    pending = list(LossConformanceTests.__subclasses__())
    while pending:
        subclass = pending.pop()
        pending += subclass.__subclasses__()
        found += first_case_per_loss_class(getattr(subclass, "cases", ()))
    return found

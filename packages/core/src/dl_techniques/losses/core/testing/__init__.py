"""The conformance kit: the checks every dl-techniques loss must pass.

Families and third-party plugins describe each loss by one or more
:class:`LossCase` and run the kit from pytest, by subclassing
:class:`LossConformanceTests`, or without pytest, as ``dl-losses check`` does,
through :func:`run_conformance_batch`. The checks:

- ``config_roundtrip``: ``get_config`` holds every constructor argument;
  ``from_config`` rebuilds an equal config and the same value.
- ``keras_serialization``: registered as ``dl_techniques>Name``; Keras'
  serialize/deserialize round trip gives the same class and value.
- ``saved_model``: a compiled model's ``.keras`` file reloads the same loss.
- ``jit_fit_step``: one jit-compiled ``fit`` step gives a finite loss and
  finite, updated weights.
- ``finite_value_and_gradient``: finite value and gradient w.r.t. ``y_pred``.
- ``half_precision``: float16 and bfloat16 inputs stay finite and close to
  float32.
- ``sample_weight``: the declared ``sample_weight`` semantics hold.
- ``invalid_hyperparameters``: each declared bad configuration raises
  ``ValueError`` naming the class.
- ``fresh_process_reload``: the saved models reload in a new process that
  imports only ``keras``, ``numpy`` and ``dl_techniques.losses``.

A family's own value and gradient tests take their numeric helpers (tensor to
float64 numpy, central differences, per-backend gradients, float64 references
of softmax and friends) from :mod:`dl_techniques.losses.core.testing.numeric`.

Example, without pytest:

```python
import pathlib, tempfile
from dl_techniques.losses.core.testing import LossCase, run_conformance_batch

case = LossCase(AcmeLoss, {"margin": 0.5}, y_true=targets, y_pred=predictions)
with tempfile.TemporaryDirectory() as work_dir:
    for result in run_conformance_batch([case], pathlib.Path(work_dir)):
        print(result.check, result.passed, result.message)
```
"""

import logging
import pathlib

from dl_techniques.losses.core.testing._support import file_stem
from dl_techniques.losses.core.testing.cases import CheckResult, LossCase
from dl_techniques.losses.core.testing.checks import (
    check_config_roundtrip,
    check_finite_value_and_gradient,
    check_half_precision,
    check_invalid_hyperparameters,
    check_jit_fit_step,
    check_keras_serialization,
    check_sample_weight,
    check_saved_model,
)
from dl_techniques.losses.core.testing.fresh_process import (
    check_fresh_process_reload,
    fresh_process_outcomes,
)
from dl_techniques.losses.core.testing.pytest_suite import LossConformanceTests

logger = logging.getLogger(__name__)

IN_PROCESS_CHECKS = (
    ("config_roundtrip", lambda case, tmp_dir: check_config_roundtrip(case)),
    ("keras_serialization", lambda case, tmp_dir: check_keras_serialization(case)),
    ("saved_model", check_saved_model),
    ("jit_fit_step", lambda case, tmp_dir: check_jit_fit_step(case)),
    ("finite_value_and_gradient", lambda case, tmp_dir: check_finite_value_and_gradient(case)),
    ("half_precision", lambda case, tmp_dir: check_half_precision(case)),
    ("sample_weight", lambda case, tmp_dir: check_sample_weight(case)),
    ("invalid_hyperparameters", lambda case, tmp_dir: check_invalid_hyperparameters(case)),
)
"""``(name, check(case, tmp_dir))`` for every check that runs in this process."""

FRESH_PROCESS_CHECK = "fresh_process_reload"


def run_conformance(case, tmp_dir):
    """Runs every in-process check on ``case`` and returns their results.

    A failing or crashing check becomes a failed :class:`CheckResult`; the
    remaining checks still run.

    Args:
        case: The :class:`LossCase` to check.
        tmp_dir: A folder for saved models; created if missing.

    Returns:
        One :class:`CheckResult` per entry of ``IN_PROCESS_CHECKS``.
    """
    tmp_dir = pathlib.Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return [_run_check(name, check, case, tmp_dir) for name, check in IN_PROCESS_CHECKS]


def run_conformance_batch(cases, tmp_dir):
    """Runs every check on every case, with one fresh process for all reloads.

    Args:
        cases: The :class:`LossCase` objects to check.
        tmp_dir: A folder for saved models; created if missing.

    Returns:
        The :class:`CheckResult` objects, case by case: the in-process checks
        followed by ``fresh_process_reload``.
    """
    cases = list(cases)
    tmp_dir = pathlib.Path(tmp_dir)
    per_case = [
        run_conformance(case, tmp_dir / f"{index:03d}_{file_stem(case.case_id)}")
        for index, case in enumerate(cases)
    ]
    outcomes = fresh_process_outcomes(cases, tmp_dir / FRESH_PROCESS_CHECK) if cases else []
    results = []
    for case, case_results, (passed, message) in zip(cases, per_case, outcomes, strict=True):
        results.extend(case_results)
        results.append(CheckResult(FRESH_PROCESS_CHECK, case.case_id, passed, message))
    return results


def _run_check(name, check, case, tmp_dir):
    try:
        note = check(case, tmp_dir)
    except AssertionError as error:
        return CheckResult(name, case.case_id, False, str(error))
    except Exception as error:
        logger.debug("conformance check %s crashed on %s", name, case.case_id, exc_info=True)
        return CheckResult(
            name, case.case_id, False, f"{case.case_id}: {type(error).__name__}: {error}"
        )
    return CheckResult(name, case.case_id, True, note)


__all__ = [
    "CheckResult",
    "IN_PROCESS_CHECKS",
    "LossCase",
    "LossConformanceTests",
    "check_config_roundtrip",
    "check_finite_value_and_gradient",
    "check_fresh_process_reload",
    "check_half_precision",
    "check_invalid_hyperparameters",
    "check_jit_fit_step",
    "check_keras_serialization",
    "check_sample_weight",
    "check_saved_model",
    "run_conformance",
    "run_conformance_batch",
]

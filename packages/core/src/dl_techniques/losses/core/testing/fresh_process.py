"""The fresh-process reload check, batched into one interpreter for all cases.

A model saved with a loss must reload in a new process that imports nothing
but ``keras``, ``numpy`` and ``dl_techniques.losses`` — never the family module
that defines the loss. This is what users do, and what an in-process reload
cannot test, since there the class is already imported and registered.
"""

import json
import os
import pathlib
import pickle
import sys

import keras
import numpy as np

from dl_techniques.losses.core.testing import _reload_script, _subprocess
from dl_techniques.losses.core.testing._models import build_evaluation_model
from dl_techniques.losses.core.testing._support import assert_close, file_stem

_TIMEOUT_SECONDS = 600


def check_fresh_process_reload(cases, tmp_dir):
    """Checks that every case's saved model reloads in one fresh process.

    Saves one compiled model per case under ``tmp_dir``, then runs a single
    subprocess with the current ``KERAS_BACKEND`` that imports only ``keras``,
    ``numpy`` and ``dl_techniques.losses``, loads every model and evaluates it.
    Each value must match the one computed in this process, and the reloaded
    loss must be the same class.

    Raises:
        AssertionError: Listing every case that did not reload.
    """
    cases = list(cases)
    if not cases:
        raise ValueError("check_fresh_process_reload: no cases were given.")
    outcomes = fresh_process_outcomes(cases, tmp_dir)
    failures = [
        f"{case.case_id}: {message}"
        for case, (passed, message) in zip(cases, outcomes, strict=True)
        if not passed
    ]
    backend = keras.backend.backend()
    if failures:
        raise AssertionError(
            f"{len(failures)} of {len(cases)} case(s) did not reload in a fresh "
            f"{backend} process:\n" + "\n".join(failures)
        )
    return f"{len(cases)} case(s) reloaded in one fresh {backend} process"


def fresh_process_outcomes(cases, tmp_dir):
    """Returns ``(passed, message)`` per case for the fresh-process reload.

    A case whose model cannot even be saved here fails alone; the others
    still reload.
    """
    tmp_dir = pathlib.Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[tuple[bool, str] | None] = [None] * len(cases)
    expected = {}
    manifest = []
    for index, case in enumerate(cases):
        stem = f"{index:03d}_{file_stem(case.case_id)}"
        try:
            expected[index] = _save_case(case, tmp_dir, stem)
        except Exception as error:
            outcomes[index] = (
                False,
                f"the model could not be saved in this process: {type(error).__name__}: {error}",
            )
            continue
        manifest.append(
            {"model": str(tmp_dir / f"{stem}.keras"), "data": str(tmp_dir / f"{stem}.pkl")}
        )
    indices = sorted(expected)
    reloaded = _run_fresh_process(manifest, tmp_dir) if manifest else []
    for index, result in zip(indices, reloaded, strict=False):
        outcomes[index] = _compare(cases[index], expected[index], result)
    return outcomes


def _save_case(case, tmp_dir, stem):
    model, x = build_evaluation_model(case)
    model.compile(optimizer="sgd", loss=case.make_loss())
    value = _reload_script.evaluate_loss(model, x, case.y_true)
    model.save(tmp_dir / f"{stem}.keras")
    x = keras.tree.map_structure(lambda leaf: np.asarray(keras.ops.convert_to_numpy(leaf)), x)
    with open(tmp_dir / f"{stem}.pkl", "wb") as stream:
        pickle.dump((x, case.y_true), stream)
    return value


def _run_fresh_process(manifest, tmp_dir):
    manifest_path = tmp_dir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    try:
        return _subprocess.run_script_copy(
            _reload_script.__file__,
            tmp_dir,
            [str(manifest_path)],
            _subprocess_environment(),
            _TIMEOUT_SECONDS,
        )
    except _subprocess.ScriptFailed as error:
        return [{"error": str(error)}] * len(manifest)


def _subprocess_environment():
    # The same backend, and the same import path so that the fresh process
    # sees exactly the distributions (and their entry points) this one sees.
    environment = dict(os.environ)
    environment["KERAS_BACKEND"] = keras.backend.backend()
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = [path for path in sys.path if path]
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def _compare(case, expected, result):
    if "error" in result:
        return False, f"the fresh process could not reload it: {result['error']}"
    wanted_type = f"{case.loss_class.__module__}.{case.loss_class.__qualname__}"
    if result["loss_type"] != wanted_type:
        return False, f"the fresh process rebuilt {result['loss_type']}, not {wanted_type}"
    try:
        assert_close(
            case, result["value"], expected, "the fresh process evaluates to a different loss"
        )
    except AssertionError as error:
        return False, str(error)
    return True, f"reloaded in a fresh {keras.backend.backend()} process with the same value"

"""Test scripts that need a fresh interpreter, run together in one.

A multi-device test must set the device layout before its framework starts,
so it runs a script in a new process; each new interpreter imports Keras and
its backend again (3-5 s of CPU). A test module adds its script to this test
process' batch at import time with :func:`add_script`; the first test that
asks for a result with :func:`script_result` runs every script added so far,
one after another, in a single subprocess with the current ``KERAS_BACKEND``.
The scripts of one batch must agree on the device layout (four logical CPUs
for TensorFlow and jax, say) and leave no global state behind (a Keras
distribution is entered with ``scope()``, not set).

A script is a module with a ``main()`` that returns a JSON-serialisable value;
it may also print it under ``if __name__ == "__main__"``, to run alone.

```python
from dl_techniques.losses.core.testing.script_batch import add_script, script_result

SCRIPT = add_script(pathlib.Path(__file__).parent / "multidevice" / "acme_tf_mirrored.py")


def test_four_replicas_train_as_one_device():
    run = script_result(SCRIPT)
    assert run["distributed"]["loss"] == pytest.approx(run["single"]["loss"])
```
"""

import os
import pathlib
import tempfile
from typing import Any

import keras

from dl_techniques.losses.core.testing import _script_runner, _subprocess

__all__ = ["add_script", "script_result"]

_TIMEOUT_SECONDS = 900
_ERROR_CHARACTERS = 4000
_ADDED: list[pathlib.Path] = []
_RESULTS: dict[pathlib.Path, dict[str, Any]] = {}


def add_script(path: str | os.PathLike[str]) -> pathlib.Path:
    """Adds the script at ``path`` to this process' batch and returns its resolved path.

    Call it at a test module's top level, so that the script is in the batch
    before any test asks for a result.
    """
    script = pathlib.Path(path).resolve()
    if not script.is_file():
        raise ValueError(f"add_script: no script at {script}.")
    if script not in _ADDED:
        _ADDED.append(script)
    return script


def script_result(path: str | os.PathLike[str]) -> Any:
    """Returns what the script's ``main()`` returned, running the pending batch first if needed.

    Raises:
        AssertionError: With the script's traceback when it raised, or the
            subprocess' error output when the subprocess failed.
    """
    script = add_script(path)
    if script not in _RESULTS:
        pending = [added for added in _ADDED if added not in _RESULTS]
        _RESULTS.update(_run_batch(pending))
    outcome = _RESULTS[script]
    if "error" in outcome:
        raise AssertionError(f"{script.name} failed:\n{outcome['error'][-_ERROR_CHARACTERS:]}")
    return outcome["value"]


def _run_batch(scripts: list[pathlib.Path]) -> dict[pathlib.Path, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="dl-losses-scripts-") as work_dir:
        try:
            results = _subprocess.run_script_copy(
                _script_runner.__file__,
                pathlib.Path(work_dir),
                [str(script) for script in scripts],
                {**os.environ, "KERAS_BACKEND": keras.backend.backend()},
                _TIMEOUT_SECONDS,
            )
        except _subprocess.ScriptFailed as error:
            return {script: {"error": str(error)} for script in scripts}
    return {script: results[str(script)] for script in scripts}

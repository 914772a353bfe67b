"""Runs test scripts one after another in this interpreter.

Run as ``python _script_runner.py RESULTS SCRIPT [SCRIPT ...]``, by path, so
that nothing but the standard library is imported before the first script
(which may set the device layout before its framework starts). Each script is
imported as a module from its own folder, which stays on ``sys.path`` so that
the processes it spawns can import it too, and its ``main()`` is called in that
folder. ``RESULTS`` receives ``{script: {"value": main()}}``, or
``{script: {"error": traceback}}`` for a script that raised.
"""

import importlib
import json
import os
import pathlib
import sys
import traceback


def run_scripts(scripts):
    """Returns ``{script: {"value": ...} or {"error": ...}}``, running each ``main()`` in turn."""
    results = {}
    for script in scripts:
        path = pathlib.Path(script).resolve()
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        os.chdir(folder)
        try:
            results[script] = {"value": importlib.import_module(path.stem).main()}
        except Exception:
            # Recorded, not swallowed: script_result raises it as the failure
            # of the test that asks for this script, and the other scripts
            # of the batch still run.
            results[script] = {"error": traceback.format_exc()}
    return results


if __name__ == "__main__":
    outcome = run_scripts(sys.argv[2:])
    with open(sys.argv[1], "w") as stream:
        json.dump(outcome, stream)

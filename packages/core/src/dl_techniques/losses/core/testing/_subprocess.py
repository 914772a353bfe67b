"""Runs one of the kit's helper scripts in a fresh interpreter and reads its JSON results."""

import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

_STDERR_LINES = 40


class ScriptFailed(Exception):
    """The helper script timed out, exited with an error or wrote no results."""


def run_script_copy(
    source: str,
    work_dir: pathlib.Path,
    arguments: Sequence[str],
    environment: Mapping[str, str],
    timeout: float,
) -> Any:
    """Runs a copy of the script ``source`` as ``python COPY RESULTS *arguments`` in ``work_dir``.

    The copy lies in ``work_dir``, so the script's own folder on ``sys.path``
    holds nothing importable. The script writes its results as JSON to the
    path ``RESULTS``; they are returned parsed.

    Raises:
        ScriptFailed: With the reason and the tail of the error output.
    """
    script = work_dir / pathlib.Path(source).name
    shutil.copyfile(source, script)
    results_path = work_dir / "results.json"
    results_path.unlink(missing_ok=True)
    try:
        completed = subprocess.run(
            [sys.executable, str(script), str(results_path), *arguments],
            cwd=work_dir,
            env=dict(environment),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise ScriptFailed(f"the fresh process did not finish within {timeout} s") from error
    if completed.returncode != 0 or not results_path.exists():
        tail = "\n".join(completed.stderr.strip().splitlines()[-_STDERR_LINES:])
        raise ScriptFailed(f"the fresh process exited with status {completed.returncode}:\n{tail}")
    return json.loads(results_path.read_text())

"""Runs mypy over core and every family, as installed in the current environment.

Usage::

    python tools/typecheck.py

The packages are checked by import name (``-p dl_techniques.losses.core`` ...),
so the namespace package spread over several ``src`` folders resolves as it
does for users. mypy runs from a temporary folder with the repository's
``pyproject.toml`` settings, so the ``packages/`` folder on the current
directory cannot shadow the installed packages. Exits with mypy's status.
"""

import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from workspace import REPO_ROOT, load_packages  # noqa: E402


def package_names() -> list[str]:
    """Import names of core and of every family package."""
    names = []
    for package in load_packages(REPO_ROOT, with_template=False):
        if package.role == "core":
            names.append("dl_techniques.losses.core")
        elif package.role == "family":
            names.append(f"dl_techniques.losses.{package.family}")
    return sorted(names)


def main() -> int:
    arguments = [sys.executable, "-m", "mypy", "--config-file", str(REPO_ROOT / "pyproject.toml")]
    for name in package_names():
        arguments += ["-p", name]
    with tempfile.TemporaryDirectory(prefix="dl-losses-mypy-") as work_dir:
        return subprocess.run(arguments, cwd=work_dir).returncode


if __name__ == "__main__":
    sys.exit(main())

"""Sets up a development environment and runs the demo or the test suite.

Needs only Python >= 3.10 with pip and venv:

    python3 tools/dev.py demo    # .venv with every family and JAX, then `dl-losses demo`
    python3 tools/dev.py test    # .venv with every family and all three backends, then
                                 # the consistency check and the suite once per backend

The environment lives in ``.venv`` at the repository root and is reused when
it exists; every package is installed editable, so changes need no reinstall.
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_REQUIREMENTS = {
    "tensorflow": ["tensorflow-cpu~=2.21.0"],
    "jax": ["jax[cpu]~=0.10.0"],
    # The CPU build; an unpinned torch resolves to a multi-GB CUDA build.
    "torch": ["torch==2.13.0"],
}
TEST_REQUIREMENTS = [
    "pytest>=8",
    "hypothesis>=6.100",
    "hatchling>=1.26",
    "hatch>=1.16",
    "tomli>=2; python_version < \"3.11\"",
]
DEMO_BACKEND = "jax"
# What the `plots` extra of core installs, for the demo's PNG files.
PLOT_REQUIREMENTS = ["matplotlib"]


def _python():
    return VENV / ("Scripts" if os.name == "nt" else "bin") / "python"


def _run(command, **kwargs):
    print("+", " ".join(str(part) for part in command), flush=True)
    return subprocess.run([str(part) for part in command], check=True, **kwargs)


def _packages():
    return sorted(
        path for path in (ROOT / "packages").iterdir()
        if (path / "pyproject.toml").exists() and path.name != "meta"
    )


def setup(backends, for_tests):
    """Creates ``.venv`` if needed and installs the packages and tools into it."""
    if not _python().exists():
        _run([sys.executable, "-m", "venv", VENV])
    pip = [_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # torch first and alone, so nothing else can pull in a different build.
    if "torch" in backends:
        _run([*pip, *BACKEND_REQUIREMENTS["torch"]])
    requirements = [
        requirement
        for backend in backends
        if backend != "torch"
        for requirement in BACKEND_REQUIREMENTS[backend]
    ]
    if for_tests:
        requirements += TEST_REQUIREMENTS
    # Core first and without extras: pip does not match the families'
    # dependency on core to an editable core named with extras.
    editable = []
    for package in sorted(_packages(), key=lambda path: path.name != "core"):
        editable += ["-e", str(package)]
    _run([*pip, *requirements, *PLOT_REQUIREMENTS, *editable])


def demo(arguments):
    setup([DEMO_BACKEND], for_tests=False)
    environment = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", DEMO_BACKEND))
    command = [_python(), "-m", "dl_techniques.losses.core.cli", "demo", "--output", arguments.output]
    return subprocess.run([str(part) for part in command], env=environment).returncode


_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


def _pytest_counts(output):
    summary = [line for line in output.splitlines() if _COUNT.search(line) and " in " in line]
    counts = {}
    if summary:
        for number, word in _COUNT.findall(summary[-1]):
            counts[word.rstrip("s") if word.startswith("error") else word] = int(number)
    return counts


def test(arguments):
    backends = arguments.backend or list(BACKENDS)
    if not arguments.no_setup:
        setup(backends, for_tests=True)
    started = time.perf_counter()
    _run([_python(), ROOT / "tools" / "check_consistency.py"], cwd=ROOT)
    totals, failed_backends = {}, []
    for backend in backends:
        environment = dict(os.environ, KERAS_BACKEND=backend)
        command = [_python(), "-m", "pytest", "-p", "no:cacheprovider", *arguments.pytest_args]
        print(f"\n=== KERAS_BACKEND={backend}: {' '.join(str(c) for c in command)}", flush=True)
        begun = time.perf_counter()
        process = subprocess.Popen(
            [str(part) for part in command], cwd=ROOT, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        process.wait()
        counts = _pytest_counts("".join(lines))
        totals[backend] = (counts, time.perf_counter() - begun)
        if process.returncode != 0 or not counts.get("passed"):
            failed_backends.append(backend)
    print("\n=== summary")
    passed = failed = skipped = 0
    for backend, (counts, seconds) in totals.items():
        print(f"{backend:10s} {counts} ({seconds:.0f}s)")
        passed += counts.get("passed", 0)
        failed += counts.get("failed", 0) + counts.get("error", 0)
        skipped += counts.get("skipped", 0)
    print(f"total wall time of the suites: {time.perf_counter() - started:.0f}s")
    if failed_backends and not failed:
        failed = len(failed_backends)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed_backends else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="set up and run `dl-losses demo`")
    demo_parser.add_argument("--output", default="demo-output")
    demo_parser.set_defaults(run=demo)
    test_parser = commands.add_parser("test", help="set up and run the suite on every backend")
    test_parser.add_argument("--backend", action="append", choices=BACKENDS)
    test_parser.add_argument("--no-setup", action="store_true", help="reuse .venv as it is")
    test_parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    test_parser.set_defaults(run=test)
    arguments = parser.parse_args()
    sys.exit(arguments.run(arguments))


if __name__ == "__main__":
    main()

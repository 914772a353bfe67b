"""Sets up a development environment and runs the demo or the test suite.

Needs only Python >= 3.10 with pip and venv:

    python3 tools/dev.py demo    # .venv with every family and JAX, then `dl-losses demo`
    python3 tools/dev.py checks  # only the consistency, drift, ruff, mypy and docs checks
    python3 tools/dev.py test    # .venv with every family and all three backends, then
                                 # the consistency check, the generated-file drift check,
                                 # ruff and mypy beside the suite once per backend (in shards)

The environment lives in ``.venv`` at the repository root and is reused when
it exists; every package is installed editable, so changes need no reinstall.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
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
    "ruff~=0.17.6",
    "mypy~=2.4",
    'tomli>=2; python_version < "3.11"',
    # The documentation site (tools/docs.py), built by the checks; never a package dependency.
    "mkdocs~=1.6.1",
    "mkdocs-material~=9.8.2",
    "mkdocstrings[python]~=1.0.8",
    "mkdocstrings-python~=2.0.11",
]
# What the packages' build backend needs to build them editable in .venv.
BUILD_REQUIREMENTS = ["hatchling>=1.26", "editables>=0.5"]
# Seconds per test file and backend, by which the root conftest balances the shards.
DURATIONS = ROOT / "tests" / "durations.json"
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
        path
        for path in (ROOT / "packages").iterdir()
        if (path / "pyproject.toml").exists() and path.name != "meta"
    )


def setup(backends, for_tests):
    """Creates ``.venv`` if needed and installs the packages and tools into it."""
    if not _python().exists():
        _run([sys.executable, "-m", "venv", VENV])
    # pip compiles every installed module to bytecode on one core (about half
    # of the install time); compileall does it afterwards on every core.
    pip = [_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile"]
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
    _run([*pip, *requirements, *BUILD_REQUIREMENTS, *PLOT_REQUIREMENTS])
    # Core first and without extras: pip does not match the families'
    # dependency on core to an editable core named with extras. The build
    # backend is installed above, so pip builds the editable wheels in this
    # environment instead of a fresh isolated one per package.
    editable = []
    for package in sorted(_packages(), key=lambda path: path.name != "core"):
        editable += ["-e", str(package)]
    _run([*pip, "--no-build-isolation", *editable])
    # Not checked: like pip, leave alone the few files that are not Python 3
    # (templates and test data that some packages ship as .py).
    print("+ compileall site-packages", flush=True)
    subprocess.run(
        [_python(), "-c", _COMPILE_SITE_PACKAGES], check=False, stdout=subprocess.DEVNULL
    )


_COMPILE_SITE_PACKAGES = (
    "import compileall, sysconfig; "
    "compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=1, workers=0)"
)


def demo(arguments):
    setup([DEMO_BACKEND], for_tests=False)
    environment = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", DEMO_BACKEND))
    command = [
        _python(),
        "-m",
        "dl_techniques.losses.core.cli",
        "demo",
        "--output",
        arguments.output,
    ]
    return subprocess.run([str(part) for part in command], env=environment).returncode


_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


def _pytest_counts(output):
    summary = [line for line in output.splitlines() if _COUNT.search(line) and " in " in line]
    counts = {}
    if summary:
        for number, word in _COUNT.findall(summary[-1]):
            counts[word.rstrip("s") if word.startswith("error") else word] = int(number)
    return counts


# The suite checks values, not run time: XLA (jax, and TensorFlow's jit_compile)
# compiles without LLVM's expensive optimisation passes, with the classic CPU
# emitters instead of the MLIR fusion emitters and in one codegen thread. Eager
# jax compiles every operation for each new input shape, so compilation is most
# of the jax suite: these flags halve its CPU time (122 s -> 65 s on four of its
# heaviest files) and take a tenth off tensorflow's. --thorough compiles with
# the defaults.
FAST_COMPILE_XLA_FLAGS = (
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true "
    "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"
)
# Each suite runs as this many processes, each collecting its part of the test
# files (the root conftest's --shard), so that two cores stay busy to the end:
# the suites start slowest first and the checks come last, filling in beside
# the last shard. Each process pays for its own collection (5-7 s) and its own
# batched fresh-process reload, so no suite is split finer than it must be.
DEFAULT_SHARDS = {"jax": 2, "tensorflow": 2, "torch": 2}


CHECKS = (
    ("tools/check_consistency.py",),
    ("tools/generate.py", "--check"),
    ("-m", "ruff", "check", "."),
    ("-m", "ruff", "format", "--check", "."),
    ("tools/typecheck.py",),
    ("tools/docs.py",),
)


def checks(arguments):
    """Runs the consistency and drift checks, ruff, mypy and the docs build; stops at a failure."""
    # The checks read sources and configs, the same on every backend: Keras'
    # numpy backend imports no framework (TensorFlow's import alone doubled
    # the consistency check's CPU time).
    environment = dict(os.environ, KERAS_BACKEND="numpy")
    for check in CHECKS:
        if subprocess.run([str(_python()), *check], cwd=ROOT, env=environment).returncode:
            print(f"failed: {' '.join(check)}", flush=True)
            return 1
    return 0


def test(arguments):
    backends = arguments.backend or list(BACKENDS)
    if not arguments.no_setup:
        setup(backends, for_tests=True)
    started = time.perf_counter()
    workers = max(1, arguments.jobs or os.cpu_count() or 1)
    shards = {backend: max(1, arguments.shards or DEFAULT_SHARDS[backend]) for backend in backends}
    if arguments.thorough:
        os.environ["DL_LOSSES_THOROUGH"] = "1"
    pytest_command = [str(_python()), "-m", "pytest", "-p", "no:cacheprovider"]
    durations_dir = (
        pathlib.Path(tempfile.mkdtemp(prefix="dl-losses-durations-"))
        if arguments.store_durations
        else None
    )
    # The slowest suite first, so that it never runs alone at the end, and the
    # checks (about 12 s on one core) last, to fill in beside the last shard.
    jobs = []
    for backend in sorted(backends, key=("jax", "tensorflow", "torch").index):
        count = shards[backend]
        for shard in range(count):
            command = [*pytest_command, *arguments.pytest_args, "--shard", f"{shard}/{count}"]
            if durations_dir:
                command += ["--store-durations", str(durations_dir / f"{backend}-{shard}.json")]
            jobs.append((f"KERAS_BACKEND={backend} --shard {shard}/{count}", backend, command))
    jobs.append(("checks", None, [str(_python()), str(ROOT / "tools" / "dev.py"), "checks"]))
    print(
        f"\n=== the suite on {', '.join(backends)} in "
        f"{', '.join(str(shards[backend]) for backend in backends)} shard(s) "
        f"each, then the checks, {workers} process(es) at a time",
        flush=True,
    )
    results = _run_jobs(jobs, workers, arguments.thorough)
    print("\n=== summary")
    checks_passed = results["checks"][2] == 0
    print(f"{'checks':10s} {'passed' if checks_passed else 'FAILED'} ({results['checks'][1]:.0f}s)")
    passed = failed = skipped = 0
    failed_backends = []
    for backend in backends:
        counts, seconds, returncodes = {}, 0.0, []
        for label, job_backend, _ in jobs:
            if job_backend != backend:
                continue
            job_counts, job_seconds, returncode = results[label]
            for word, number in job_counts.items():
                counts[word] = counts.get(word, 0) + number
            seconds += job_seconds
            returncodes.append(returncode)
        print(f"{backend:10s} {counts} ({seconds:.0f}s in {shards[backend]} process(es))")
        passed += counts.get("passed", 0)
        failed += counts.get("failed", 0) + counts.get("error", 0)
        skipped += counts.get("skipped", 0)
        if any(returncodes) or not counts.get("passed"):
            failed_backends.append(backend)
    print(f"wall time of the checks and suites: {time.perf_counter() - started:.0f}s")
    if failed_backends and not failed:
        failed = len(failed_backends)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if durations_dir and not failed_backends:
        _store_durations(durations_dir, backends)
    elif durations_dir:
        shutil.rmtree(durations_dir)
    return 1 if failed_backends or not checks_passed else 0


def _store_durations(durations_dir, backends):
    """Replaces each backend's seconds per test file in ``DURATIONS`` with this run's."""
    record = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    for backend in backends:
        seconds = {}
        for part in sorted(durations_dir.glob(f"{backend}-*.json")):
            seconds.update(json.loads(part.read_text()))
        record[backend] = dict(sorted(seconds.items()))
    DURATIONS.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")
    shutil.rmtree(durations_dir)
    print(f"stored the seconds per test file in {DURATIONS.relative_to(ROOT)}")


def _job_environment(backend, work_dir, thorough, threads):
    if backend is None:
        return dict(os.environ)
    environment = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "torch":
        # One share of the cores per process: torch's OpenMP threads spin
        # while they wait for a core held by the process beside it.
        environment.setdefault("OMP_NUM_THREADS", str(threads))
    if not thorough:
        flags = [FAST_COMPILE_XLA_FLAGS, environment.get("XLA_FLAGS", "")]
        environment["XLA_FLAGS"] = " ".join(flag for flag in flags if flag)
    if backend == "jax":
        # One compilation cache for this run's jax shards and the subprocesses
        # their tests start (a fresh-process reload compiles what its parent
        # did; a shard reuses the other's compiled operations: 8 % of a shard's
        # CPU time with the other's cache at hand). No size limit: with one,
        # jax takes a file lock and sums the folder's sizes on every write,
        # which stalls both shards. An entry read while the other shard writes
        # it fails to load with a warning, and jax compiles it again.
        environment["JAX_COMPILATION_CACHE_DIR"] = str(work_dir.parent / "jax-cache")
        environment["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return environment


def _run_jobs(jobs, workers, thorough):
    """Runs ``(label, backend, command)`` jobs in order, ``workers`` at a time.

    Each process writes to its own log, printed whole when it ends, so the
    outputs of concurrent processes do not interleave. Returns ``{label:
    (pytest counts, seconds, exit status)}``.
    """
    pending = list(jobs)
    threads = max(1, (os.cpu_count() or 1) // workers)
    running = {}
    results = {}
    with tempfile.TemporaryDirectory(prefix="dl-losses-suites-") as temporary:
        temporary_dir = pathlib.Path(temporary)
        while pending or running:
            while pending and len(running) < workers:
                label, backend, command = pending.pop(0)
                work_dir = temporary_dir / f"job{len(jobs) - len(pending)}"
                work_dir.mkdir()
                log = open(work_dir / "output.log", "w+")
                print(f"=== {label} started: {' '.join(command)}", flush=True)
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=_job_environment(backend, work_dir, thorough, threads),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                running[label] = (process, time.perf_counter(), log)
            time.sleep(0.5)
            for label, (process, begun, log) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[label]
                log.seek(0)
                output = log.read()
                log.close()
                seconds = time.perf_counter() - begun
                print(
                    f"\n=== {label} finished with exit status {process.returncode} ({seconds:.0f}s)"
                )
                sys.stdout.write(output)
                sys.stdout.flush()
                results[label] = (_pytest_counts(output), seconds, process.returncode)
    return results


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="set up and run `dl-losses demo`")
    demo_parser.add_argument("--output", default="demo-output")
    demo_parser.set_defaults(run=demo)
    test_parser = commands.add_parser("test", help="set up and run the suite on every backend")
    test_parser.add_argument("--backend", action="append", choices=BACKENDS)
    test_parser.add_argument("--no-setup", action="store_true", help="reuse .venv as it is")
    test_parser.add_argument(
        "--jobs", type=int, help="test processes run at the same time (default: the CPU count)"
    )
    test_parser.add_argument(
        "--shards",
        type=int,
        help="processes each backend's suite is split into (default: "
        + ", ".join(f"{count} for {backend}" for backend, count in DEFAULT_SHARDS.items())
        + ")",
    )
    test_parser.add_argument(
        "--thorough",
        action="store_true",
        help="every hypothesis example on every backend, new ones each run "
        "(DL_LOSSES_THOROUGH=1), and XLA's default optimisation, for nightly runs",
    )
    test_parser.add_argument(
        "--store-durations",
        action="store_true",
        help="after a passing run, record each test file's seconds per backend in "
        "tests/durations.json (the shards are balanced by them)",
    )
    test_parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    test_parser.set_defaults(run=test)
    checks_parser = commands.add_parser(
        "checks",
        help="the consistency and drift checks, ruff, mypy and the strict docs build, in .venv",
    )
    checks_parser.set_defaults(run=checks)
    arguments = parser.parse_args()
    sys.exit(arguments.run(arguments))


if __name__ == "__main__":
    main()

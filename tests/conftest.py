"""Fixtures of the cross-package tests: built wheels, fake distributions, subprocesses.

Tests that need a fresh interpreter run a script with :func:`run_script`, which
reports its findings as one JSON line; each script checks as much as it can, since
every new process pays for importing Keras and its backend again.
"""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT_MARKER = "DL_LOSSES_TEST_RESULT "
# Where tests marked ``backend_independent`` run: building wheels, installing
# them and discovering entry points do not involve the Keras backend, and each
# backend's own save/reload through the registry is covered by the conformance
# kit's fresh-process check in every family's suite.
BACKEND_INDEPENDENT_BACKEND = "torch"
SUBPROCESS_TIMEOUT_S = 600

_PRELUDE = f"""
import json as _json


def report(**values):
    print({RESULT_MARKER!r} + _json.dumps(values), flush=True)
"""


def load_tool(name):
    """Imports ``tools/<name>.py`` as a module."""
    path = REPO_ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_dl_losses_tests_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(config, items):
    backend = os.environ.get("KERAS_BACKEND")
    if backend in (None, BACKEND_INDEPENDENT_BACKEND):
        return
    skip = pytest.mark.skip(
        reason=f"packaging and plugin discovery do not depend on the Keras backend: "
        f"runs with KERAS_BACKEND={BACKEND_INDEPENDENT_BACKEND}"
    )
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def keras_backend():
    """The backend of this test process, which every subprocess must use too."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    import keras

    return keras.backend.backend()


@pytest.fixture(scope="session")
def subprocess_env(keras_backend):
    """Returns a function building a subprocess environment.

    ``subprocess_env(pythonpath=[...], **variables)`` copies this process'
    environment, puts ``pythonpath`` first on ``PYTHONPATH`` and sets this
    process' Keras backend unless ``KERAS_BACKEND`` is given.
    """

    def build(pythonpath=(), **variables):
        environment = dict(os.environ)
        environment["KERAS_BACKEND"] = keras_backend
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        paths = [str(path) for path in pythonpath]
        if environment.get("PYTHONPATH"):
            paths.append(environment["PYTHONPATH"])
        if paths:
            environment["PYTHONPATH"] = os.pathsep.join(paths)
        environment.update(variables)
        return environment

    return build


def run_script(script, env, cwd, python=sys.executable):
    """Runs ``script`` in a new interpreter and returns what it ``report``-ed.

    The script may call ``report(**values)`` (defined for it) any number of
    times; the values are merged into one dictionary. A non-zero exit fails
    the test with the script's output.
    """
    completed = subprocess.run(
        [str(python), "-c", _PRELUDE + textwrap.dedent(script)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"subprocess exited with {completed.returncode}\n--- stdout\n"
            f"{completed.stdout[-4000:]}\n--- stderr\n{completed.stderr[-6000:]}"
        )
    values = {}
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            values.update(json.loads(line[len(RESULT_MARKER) :]))
    values["_stdout"] = completed.stdout
    values["_stderr"] = completed.stderr
    return values


def make_fake_distribution(site, distribution, version, entry_points, modules=None):
    """Writes an installed-looking distribution into the folder ``site``.

    Args:
        site: A folder that will be on ``sys.path`` of the process under test.
        distribution: The distribution name, e.g. ``"broken-plugin"``.
        version: Its version.
        entry_points: ``{group: {name: "module:attribute"}}``.
        modules: ``{module_name: source}`` written as ``<module_name>.py``.
    """
    site = pathlib.Path(site)
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    sections = []
    for group, entries in entry_points.items():
        lines = "\n".join(f"{name} = {value}" for name, value in entries.items())
        sections.append(f"[{group}]\n{lines}\n")
    (info / "entry_points.txt").write_text("\n".join(sections))
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return info


@pytest.fixture(scope="session")
def built_wheels(tmp_path_factory):
    """Every package's wheel and the plugin template's, built once per session.

    Returns ``{folder name: wheel path}``, e.g. ``{"core": ..., "forecasting":
    ..., "meta": ..., "plugin_template": ...}``.
    """
    build_wheels = load_tool("build_wheels")
    dist_dir = tmp_path_factory.mktemp("wheels")
    folders = [path.name for path in build_wheels.package_dirs()] + ["plugin_template"]
    built = build_wheels.build_wheels(dist_dir, with_template=True)
    return dict(zip(folders, built, strict=True))


@pytest.fixture
def repository_copy(tmp_path):
    """A copy of ``packages/`` and ``tools/`` that a test may edit."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "packages", root / "packages", ignore=ignore)
    shutil.copytree(REPO_ROOT / "tools", root / "tools", ignore=ignore)
    return root


@pytest.fixture(scope="session")
def run_python():
    """:func:`run_script`, for test modules (which cannot import conftest)."""
    return run_script


@pytest.fixture(scope="session")
def fake_distribution():
    """:func:`make_fake_distribution`, for test modules."""
    return make_fake_distribution


@pytest.fixture(scope="session")
def tool():
    """:func:`load_tool`, for test modules."""
    return load_tool


@pytest.fixture(scope="session")
def release_version():
    """The lockstep version of the repository's distributions, read from core."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    with open(REPO_ROOT / "packages" / "core" / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]

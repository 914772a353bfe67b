"""Every public object has a fully annotated signature, and mypy checks calls against it."""

import importlib.metadata
import inspect
import pathlib
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.backend_independent

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
ENTRY_POINTS = sorted(
    (
        entry
        for entry in importlib.metadata.entry_points(group="dl_techniques.losses")
        if entry.value.startswith("dl_techniques.losses.")
    ),
    key=lambda entry: entry.name,
)


def _public_callables(obj):
    if not inspect.isclass(obj):
        return [(obj.__name__, obj)]
    found = [(f"{obj.__name__}.__init__", obj.__init__)] if "__init__" in vars(obj) else []
    for name, member in vars(obj).items():
        if name.startswith("_") or not callable(member) or inspect.isclass(member):
            continue
        found.append((f"{obj.__name__}.{name}", member))
    return found


def _missing_annotations(function):
    signature = inspect.signature(function)
    missing = [
        name
        for name, parameter in signature.parameters.items()
        if name not in ("self", "cls") and parameter.annotation is inspect.Parameter.empty
    ]
    if signature.return_annotation is inspect.Signature.empty and function.__name__ != "__init__":
        missing.append("return")
    return missing


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda entry: entry.name)
def test_public_signatures_are_annotated(entry):
    unannotated = {
        name: missing
        for name, function in _public_callables(entry.load())
        if (missing := _missing_annotations(inspect.unwrap(function)))
    }
    assert unannotated == {}


def test_mypy_rejects_a_wrong_argument_type_on_the_public_api(tmp_path):
    script = tmp_path / "user_code.py"
    script.write_text(
        textwrap.dedent(
            """
            from dl_techniques.losses.forecasting import HuberLoss
            from dl_techniques.losses.core import validation

            HuberLoss(delta=1.5)
            HuberLoss(delta="1.5")
            validation.check_positive("L", 2, 1.0)
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO_ROOT / "pyproject.toml"),
            "--no-incremental",
            str(script),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout
    assert len(errors) == 2, result.stdout
    assert 'Argument "delta" to "HuberLoss" has incompatible type "str"' in errors[0]
    assert 'Argument 2 to "check_positive" has incompatible type "int"' in errors[1]

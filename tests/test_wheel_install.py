"""Core and one family, installed from their wheels into a fresh virtual environment.

This is what a user gets from ``pip install "dl-techniques-losses[forecasting]"``:
no editable install, no source tree on the path, no other family. The
environment has no backend framework of its own and Keras runs on its numpy
backend. That backend imports jax (and scipy) in Keras 3.15, and installing
them would take a minute and 600 MB, so this interpreter's copies are linked
into the environment; the packages under test come only from their wheels.
"""

import importlib.metadata
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.backend_independent

FORECASTING_NAMES = ("HuberLoss", "MASELoss", "SMAPELoss", "MQLoss")

CHECK_INSTALLED = """
import dl_techniques
import dl_techniques.losses
from dl_techniques.losses import HuberLoss, MASELoss
from dl_techniques.losses.forecasting import mase

report(
    mase_is_the_family_class=MASELoss is mase.MASELoss,
    mase_module=MASELoss.__module__,
    losses_init=dl_techniques.losses.__file__,
    namespace_path=list(dl_techniques.__path__),
    backend=__import__("keras").backend.backend(),
    # 0.5 * 0.5**2 for the first element, 1.0 * (2.0 - 0.5) for the second.
    huber_value=float(HuberLoss(delta=1.0)([[0.0, 1.0]], [[0.5, 3.0]])),
)
try:
    from dl_techniques.losses import F1Loss
except ImportError as error:
    report(f1_error=str(error))
else:
    report(f1_error=None)
"""


@pytest.mark.slow
def test_core_and_forecasting_wheels_work_in_a_fresh_environment(
    tmp_path, built_wheels, run_python, release_version
):
    venv = tmp_path / "venv"
    # The venv gets no pip of its own; this interpreter's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    _pip(python, str(built_wheels["core"]), str(built_wheels["forecasting"]))
    site_packages = next(venv.glob("lib/python*/site-packages"))
    _link_host_distributions(site_packages, tmp_path / "host", ["jax"])

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["KERAS_BACKEND"] = "numpy"
    env["PYTHONNOUSERSITE"] = "1"
    found = run_python(CHECK_INSTALLED, env=env, cwd=tmp_path, python=python)

    assert found["backend"] == "numpy"
    assert found["mase_is_the_family_class"]
    assert found["mase_module"] == "dl_techniques.losses.forecasting.mase"
    assert found["losses_init"] == str(site_packages / "dl_techniques" / "losses" / "__init__.py")
    assert found["namespace_path"] == [str(site_packages / "dl_techniques")]
    assert found["huber_value"] == pytest.approx((0.125 + 1.5) / 2, rel=1e-6)
    assert found["f1_error"] is not None
    assert 'pip install "dl-techniques-losses[classification]"' in found["f1_error"]

    command = subprocess.run(
        [str(venv / "bin" / "dl-losses"), "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert command.returncode == 0, command.stderr
    listing = command.stdout
    rows = {line.split()[0]: line.split() for line in listing.splitlines() if line.strip()}
    for name in FORECASTING_NAMES:
        assert name in rows, listing
        assert "forecasting" in rows[name], listing
        assert "dl-techniques-losses-forecasting" in rows[name], listing
        assert release_version in rows[name], listing

    # The meta package resolves its forecasting pins against these wheels
    # without an index, and adds nothing but metadata.
    _pip(
        python,
        "--no-index",
        "--find-links",
        str(built_wheels["meta"].parent),
        f"dl-techniques-losses[forecasting]=={release_version}",
    )
    assert not (site_packages / "dl_techniques" / "__init__.py").exists()
    assert (site_packages / "dl_techniques" / "losses" / "__init__.py").is_file()
    owners = _record_owners(site_packages)
    assert owners.get("dl_techniques/losses/__init__.py") == ["dl_techniques_losses_core"]
    assert "dl_techniques/__init__.py" not in owners
    meta_files = [path for path, dists in owners.items() if "dl_techniques_losses" in dists]
    assert meta_files and all(
        path.startswith(f"dl_techniques_losses-{release_version}.dist-info/") for path in meta_files
    )
    with zipfile.ZipFile(built_wheels["meta"]) as meta_wheel:
        assert all(".dist-info/" in name for name in meta_wheel.namelist())


def _pip(python, *arguments):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-compile",
            *arguments,
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def _record_owners(site_packages):
    """Maps each installed file to the distributions whose RECORD lists it."""
    owners = {}
    for record in site_packages.glob("*.dist-info/RECORD"):
        distribution = record.parent.name.split("-")[0]
        for line in record.read_text().splitlines():
            owners.setdefault(line.split(",")[0], []).append(distribution)
    return owners


def _link_host_distributions(site_packages, link_dir, roots):
    """Makes ``roots`` and what they need that the venv lacks importable there.

    Links each distribution's top-level folders and dist-info from this
    interpreter into ``link_dir`` and puts ``link_dir`` on the venv's path.
    """
    present = {
        canonicalize_name(path.name.split("-")[0]) for path in site_packages.glob("*.dist-info")
    }
    link_dir.mkdir()
    pending, linked = list(roots), set()
    while pending:
        name = canonicalize_name(pending.pop())
        if name in linked or name in present:
            continue
        linked.add(name)
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(
                f"Keras' numpy backend needs {name}, which is not installed in the "
                f"test environment ({sys.executable})"
            )
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
        tops = {pathlib.PurePath(file).parts[0] for file in distribution.files}
        for top in tops - {".."}:
            link = link_dir / top
            if not link.exists():
                link.symlink_to(distribution.locate_file(top))
    (site_packages / "host_backend.pth").write_text(f"{link_dir}\n")

"""The plugin template, built and installed like a third-party distribution.

Its wheel is installed with ``pip install --no-deps --target`` into a folder that
the subprocesses get on ``PYTHONPATH``: the plugin is found only through the
dist-info there, as after ``pip install acme-losses``.
"""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dl_techniques.losses.core import registry

pytestmark = pytest.mark.backend_independent

TEMPLATE_DIR = pathlib.Path(__file__).resolve().parent.parent / "tools" / "plugin_template"

SAVE_AND_LIST = """
import contextlib
import io
import runpy
import sys

import keras
import numpy as np

import dl_techniques.losses
from dl_techniques.losses import AcmeLogCoshLoss
import acme_losses.log_cosh

x = np.linspace(-1.0, 1.0, 12, dtype="float32").reshape(4, 3)
y = np.array([[3.0, -2.0], [0.5, 0.0], [-4.0, 1.0], [2.0, 2.0]], dtype="float32")
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="ones")])
model.compile(optimizer="sgd", loss=AcmeLogCoshLoss(scale=0.5))
model.save("acme.keras")

listing = io.StringIO()
list_status = None
sys.argv = ["dl_techniques.losses.core.cli", "list"]
with contextlib.redirect_stdout(listing):
    try:
        runpy.run_module("dl_techniques.losses.core.cli", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        list_status = exit.code

report(
    same_class=AcmeLogCoshLoss is acme_losses.log_cosh.AcmeLogCoshLoss,
    keras_name=keras.saving.get_registered_name(AcmeLogCoshLoss),
    value=float(model.evaluate(x, y, verbose=0)),
    predictions=keras.ops.convert_to_numpy(model(x)).tolist(),
    listing=listing.getvalue(),
    list_status=list_status,
)
"""

RELOAD_AND_CHECK = """
import contextlib
import io
import os
import runpy
import sys

import keras
import numpy as np

import dl_techniques.losses

imported_before_load = "acme_losses.log_cosh" in sys.modules
model = keras.saving.load_model("acme.keras")
x = np.linspace(-1.0, 1.0, 12, dtype="float32").reshape(4, 3)
y = np.array([[3.0, -2.0], [0.5, 0.0], [-4.0, 1.0], [2.0, 2.0]], dtype="float32")
report(
    imported_before_load=imported_before_load,
    loss_type=f"{type(model.loss).__module__}.{type(model.loss).__qualname__}",
    scale=model.loss.scale,
    value=float(model.evaluate(x, y, verbose=0)),
)

checked = io.StringIO()
check_status = None
sys.argv = ["dl_techniques.losses.core.cli", "check", "acme-losses"]
with contextlib.redirect_stdout(checked):
    try:
        runpy.run_module("dl_techniques.losses.core.cli", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        check_status = exit.code
report(check_output=checked.getvalue(), check_status=check_status)

# The template's own value tests, against the installed wheel.
import pytest

template = os.environ["ACME_TEMPLATE_DIR"]
template_tests = pytest.main(
    ["-q", "-p", "no:cacheprovider", "--rootdir", template, f"{template}/tests/test_log_cosh.py"]
)
report(template_tests_status=int(template_tests))
"""


@pytest.fixture(scope="module")
def plugin_site(built_wheels, tmp_path_factory):
    """A folder holding the installed template, for ``PYTHONPATH``."""
    site = tmp_path_factory.mktemp("acme_site")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(built_wheels["plugin_template"]),
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return site


def reference_log_cosh(y_true, y_pred, scale):
    """``mean(s**2 * log(cosh((y_pred - y_true) / s)))`` over the whole batch."""
    error = (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) / scale
    return float(np.mean(scale**2 * (np.logaddexp(error, -error) - np.log(2.0))))


@pytest.mark.slow
def test_plugin_is_importable_listed_checked_and_reloads_without_custom_objects(
    plugin_site, tmp_path, run_python, subprocess_env
):
    env = subprocess_env(pythonpath=[plugin_site], ACME_TEMPLATE_DIR=str(TEMPLATE_DIR))
    saved = run_python(SAVE_AND_LIST, env=env, cwd=tmp_path)

    assert saved["same_class"]
    assert saved["keras_name"] == "dl_techniques>AcmeLogCoshLoss"
    y = np.array([[3.0, -2.0], [0.5, 0.0], [-4.0, 1.0], [2.0, 2.0]])
    assert saved["value"] == pytest.approx(
        reference_log_cosh(y, saved["predictions"], 0.5), rel=1e-5
    )
    assert saved["list_status"] == 0
    acme_rows = [
        line.split() for line in saved["listing"].splitlines() if "AcmeLogCoshLoss" in line
    ]
    assert len(acme_rows) == 1, saved["listing"]
    assert acme_rows[0][0] == "AcmeLogCoshLoss"
    assert "acme-losses" in acme_rows[0] and "0.1.0" in acme_rows[0]

    # A new process that imports nothing of the plugin: the saved name alone
    # must bring the class back.
    reloaded = run_python(RELOAD_AND_CHECK, env=env, cwd=tmp_path)
    assert not reloaded["imported_before_load"]
    assert reloaded["loss_type"] == "acme_losses.log_cosh.AcmeLogCoshLoss"
    assert reloaded["scale"] == 0.5
    assert reloaded["value"] == pytest.approx(saved["value"], rel=1e-6)

    assert reloaded["check_status"] == 0, reloaded["check_output"]
    result_rows = [
        line.split() for line in reloaded["check_output"].splitlines() if "acme_log_cosh" in line
    ]
    assert len(result_rows) >= 8, reloaded["check_output"]
    assert all("pass" in row for row in result_rows), reloaded["check_output"]

    assert reloaded["template_tests_status"] == 0, reloaded["_stdout"]


def test_the_plugin_is_not_visible_to_this_process():
    # The template is never installed in the test environment itself, so
    # core's and the families' tests cannot come to depend on it.
    assert "AcmeLogCoshLoss" not in registry.names()

"""A plugin whose module fails to import must not take the others down with it.

Two hand-made distributions sit in a folder on ``PYTHONPATH`` of a fresh
process: ``broken-plugin``, whose module raises at import, and ``good-plugin``.
"""

import pytest

pytestmark = pytest.mark.backend_independent

LOSS_MODULE = """
import keras

from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class GoodLoss(keras.losses.Loss):
    def __init__(self, factor=2.0, name="good_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.factor = factor

    def call(self, y_true, y_pred):
        return self.factor * keras.ops.mean(keras.ops.abs(y_pred - y_true), axis=-1)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
"""

BROKEN_MODULE = """
raise RuntimeError("broken_plugin_losses cannot be imported")
"""

PROBE = """
import logging

import numpy as np


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


collected = Collect()
logging.getLogger("dl_techniques").addHandler(collected)

import dl_techniques.losses as losses
from dl_techniques.losses.core import registry

report(
    listed=[name for name in ("BrokenLoss", "GoodLoss") if name in dir(losses)],
    good_value=float(losses.GoodLoss()(np.array([[0.0, 0.0]]), np.array([[1.0, -3.0]]))),
    good_module=losses.GoodLoss.__module__,
)

loaded = registry.load_all()
report(loaded=sorted(loaded), load_all_warnings=list(collected.messages))

try:
    registry.load_all(strict=True)
except ImportError as error:
    report(strict_error=str(error))
else:
    report(strict_error=None)

try:
    registry.get("BrokenLoss")
except ImportError as error:
    report(get_error=str(error), get_cause=type(error.__cause__).__name__)
else:
    report(get_error=None)

try:
    from dl_techniques.losses import BrokenLoss
except ImportError as error:
    report(from_import_error=str(error))
else:
    report(from_import_error=None)
"""


@pytest.mark.slow
def test_a_broken_plugin_is_skipped_in_bulk_and_named_when_asked_for(
    tmp_path, fake_distribution, run_python, subprocess_env
):
    site = tmp_path / "site"
    fake_distribution(
        site,
        "broken-plugin",
        "0.1",
        {"dl_techniques.losses": {"BrokenLoss": "broken_plugin_losses:BrokenLoss"}},
        {"broken_plugin_losses": BROKEN_MODULE},
    )
    fake_distribution(
        site,
        "good-plugin",
        "0.2",
        {"dl_techniques.losses": {"GoodLoss": "good_plugin_losses:GoodLoss"}},
        {"good_plugin_losses": LOSS_MODULE},
    )
    assert (site / "broken_plugin-0.1.dist-info" / "entry_points.txt").is_file()

    found = run_python(PROBE, env=subprocess_env(pythonpath=[site]), cwd=tmp_path)

    assert found["listed"] == ["BrokenLoss", "GoodLoss"]
    assert found["good_module"] == "good_plugin_losses"
    # 2 * mean(|1 - 0|, |-3 - 0|) = 2 * 2
    assert found["good_value"] == pytest.approx(4.0)

    assert "GoodLoss" in found["loaded"]
    assert "BrokenLoss" not in found["loaded"]
    assert any("broken-plugin" in message for message in found["load_all_warnings"])

    for key in ("strict_error", "get_error", "from_import_error"):
        assert found[key] is not None, key
        assert "broken-plugin" in found[key], found[key]
        assert "BrokenLoss" in found[key], found[key]
    assert "broken_plugin_losses cannot be imported" in found["get_error"]
    assert found["get_cause"] == "RuntimeError"

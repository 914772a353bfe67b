"""Two distributions declaring one name: a deterministic winner, both reachable.

Hand-made distributions in a folder on ``PYTHONPATH`` of fresh processes:
``alpha-losses`` and ``beta-losses`` both declare ``SharedLoss``, and
``gamma-losses`` declares ``MASELoss``, a name of the installed forecasting
family.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.backend_independent

LOSS_MODULE = """
import keras

from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class {name}(keras.losses.Loss):
    def __init__(self, power={power}, name="{snake}", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.power = power

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_pred - y_true) ** self.power, axis=-1)

    def get_config(self):
        return {{**super().get_config(), "power": self.power}}
"""

COMMON = """
import keras
import numpy as np

x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]], dtype="float32")
y = np.array([[2.0, -1.0, 0.0], [1.0, 1.0, 1.0], [4.0, 0.0, -2.0]], dtype="float32")
"""

SAVE = (
    COMMON
    + """
import logging


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

shared = losses.SharedLoss
alpha = registry.get("alpha-losses:SharedLoss")
beta = registry.get("beta-losses:SharedLoss")
gamma = registry.get("gamma-losses:MASELoss")
values = {}
for label, loss_class in (("beta", beta), ("gamma", gamma)):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, kernel_initializer="ones")])
    model.compile(optimizer="sgd", loss=loss_class())
    model.save(f"{label}.keras")
    values[label] = float(model.evaluate(x, y, verbose=0))

report(
    shared_module=shared.__module__,
    alpha_module=alpha.__module__,
    beta_module=beta.__module__,
    mase_module=losses.MASELoss.__module__,
    gamma_module=gamma.__module__,
    keras_names={
        label: keras.saving.get_registered_name(loss_class)
        for label, loss_class in (("alpha", alpha), ("beta", beta), ("gamma", gamma))
    },
    warnings=collected.messages,
    values=values,
    shadowed=sorted(
        entry.qualified_name
        for entry in registry.entries(include_shadowed=True)
        if entry not in registry.entries()
    ),
)
"""
)

RELOAD = (
    COMMON
    + """
import dl_techniques.losses

reloaded = {}
for label in ("beta", "gamma"):
    model = keras.saving.load_model(f"{label}.keras")
    reloaded[label] = {
        "loss_module": type(model.loss).__module__,
        "value": float(model.evaluate(x, y, verbose=0)),
    }
report(reloaded=reloaded)
"""
)


@pytest.mark.slow
def test_colliding_names_resolve_deterministically_and_every_model_reloads(
    tmp_path, fake_distribution, run_python, subprocess_env
):
    site = tmp_path / "site"
    for distribution, name, module, power in (
        ("beta-losses", "SharedLoss", "beta_shared", 2.0),
        ("alpha-losses", "SharedLoss", "alpha_shared", 1.0),
        ("gamma-losses", "MASELoss", "gamma_mase", 3.0),
    ):
        fake_distribution(
            site,
            distribution,
            "1.0",
            {"dl_techniques.losses": {name: f"{module}:{name}"}},
            {module: LOSS_MODULE.format(name=name, snake=module, power=power)},
        )
    env = subprocess_env(pythonpath=[site])

    saved = run_python(SAVE, env=env, cwd=tmp_path)

    assert saved["shared_module"] == "alpha_shared"
    assert saved["alpha_module"] == "alpha_shared"
    assert saved["beta_module"] == "beta_shared"
    assert saved["mase_module"] == "dl_techniques.losses.forecasting.mase"
    assert saved["gamma_module"] == "gamma_mase"
    assert saved["shadowed"] == ["beta-losses:SharedLoss", "gamma-losses:MASELoss"]
    assert saved["keras_names"] == {
        "alpha": "dl_techniques>SharedLoss",
        "beta": "dl_techniques>beta-losses:SharedLoss",
        "gamma": "dl_techniques>gamma-losses:MASELoss",
    }
    shared_warnings = [message for message in saved["warnings"] if "'SharedLoss'" in message]
    assert len(shared_warnings) == 1
    assert "alpha-losses" in shared_warnings[0] and "beta-losses" in shared_warnings[0]
    assert any("'MASELoss'" in message for message in saved["warnings"])

    # With all-ones weights the predictions are x summed per row, each column
    # alike: 3.0, -0.5 and 3.0.
    predictions = np.array([[3.0] * 3, [-0.5] * 3, [3.0] * 3])
    targets = np.array([[2.0, -1.0, 0.0], [1.0, 1.0, 1.0], [4.0, 0.0, -2.0]])
    for label, power in (("beta", 2.0), ("gamma", 3.0)):
        expected = np.mean(np.abs(predictions - targets) ** power)
        assert saved["values"][label] == pytest.approx(expected, rel=1e-6), label

    reloaded = run_python(RELOAD, env=env, cwd=tmp_path)["reloaded"]

    # The names these models were saved under resolve to the shadowed classes.
    modules = {"beta": "beta_shared", "gamma": "gamma_mase"}
    for label, module in modules.items():
        assert reloaded[label]["loss_module"] == module, label
        assert reloaded[label]["value"] == pytest.approx(saved["values"][label], rel=1e-6), label

"""The entry-point registry, the lazy package attributes and the Keras resolvers."""

import logging
import sys
import textwrap

import keras
import numpy as np
import pytest

import dl_techniques.losses as losses_package
from dl_techniques.losses.core import catalog, registry

PLAIN_LOSS_MODULE = """
import keras
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class {name}(keras.losses.Loss):
    def __init__(self, factor=1.0, name="{snake}", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.factor = factor

    def call(self, y_true, y_pred):
        return self.factor * keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)

    def get_config(self):
        return {{**super().get_config(), "factor": self.factor}}
"""


def make_distribution(root, distribution, entries, modules):
    """Writes a fake installed distribution (dist-info + modules) under root."""
    info = root / f"{distribution.replace('-', '_')}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.3\n")
    lines = "\n".join(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[dl_techniques.losses]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def install_alpha(root, extra_entries=None):
    """Installs fake-alpha with AlphaLoss (and extra entries) and re-reads the registry."""
    entries = {"AlphaLoss": "fake_alpha:AlphaLoss", **(extra_entries or {})}
    make_distribution(
        root,
        "fake-alpha",
        entries,
        {"fake_alpha": PLAIN_LOSS_MODULE.format(name="AlphaLoss", snake="alpha")},
    )
    registry.refresh()


def install_two_shared_losses(root):
    """Installs fake-zeta and fake-beta, both declaring SharedLoss."""
    for distribution in ("fake-zeta", "fake-beta"):
        module = distribution.replace("-", "_")
        make_distribution(
            root,
            distribution,
            {"SharedLoss": f"{module}:SharedLoss"},
            {module: PLAIN_LOSS_MODULE.format(name="SharedLoss", snake=module)},
        )


@pytest.fixture
def plugin_root(tmp_path, monkeypatch):
    """A folder on sys.path for fake distributions; the registry is re-read."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [name for name in sys.modules if name.startswith("fake_")]:
        del sys.modules[module]
    monkeypatch.undo()
    registry.refresh()


def test_listing_names_imports_no_plugin_module(plugin_root):
    install_alpha(plugin_root)

    assert "AlphaLoss" in registry.names()
    assert "AlphaLoss" in dir(losses_package)
    assert "fake_alpha" not in sys.modules


def test_attribute_access_loads_only_the_entry_module(plugin_root):
    make_distribution(
        plugin_root,
        "fake-alpha",
        {"AlphaLoss": "fake_alpha:AlphaLoss", "BetaLoss": "fake_beta:BetaLoss"},
        {
            "fake_alpha": PLAIN_LOSS_MODULE.format(name="AlphaLoss", snake="alpha"),
            "fake_beta": PLAIN_LOSS_MODULE.format(name="BetaLoss", snake="beta"),
        },
    )
    registry.refresh()

    alpha = losses_package.AlphaLoss

    assert alpha.__module__ == "fake_alpha"
    assert "fake_beta" not in sys.modules


def test_entry_describes_kind_family_distribution_and_version(plugin_root):
    make_distribution(
        plugin_root,
        "fake-alpha",
        {
            "AlphaLoss": "fake_alpha:AlphaLoss",
            "AlphaMetric": "fake_alpha:AlphaLoss",
            "AlphaConfig": "fake_alpha:AlphaLoss",
            "create_alpha": "fake_alpha:AlphaLoss",
            "alpha_penalty": "fake_alpha:AlphaLoss",
        },
        {"fake_alpha": PLAIN_LOSS_MODULE.format(name="AlphaLoss", snake="alpha")},
    )
    registry.refresh()

    found = {entry.name: entry for entry in registry.entries()}

    assert found["AlphaLoss"].kind == "loss"
    assert found["AlphaMetric"].kind == "metric"
    assert found["AlphaConfig"].kind == "config"
    assert found["create_alpha"].kind == "factory"
    assert found["alpha_penalty"].kind == "function"
    assert found["AlphaLoss"].family == "fake-alpha"
    assert found["AlphaLoss"].distribution == "fake-alpha"
    assert found["AlphaLoss"].version == "0.3"
    assert found["AlphaLoss"].qualified_name == "fake-alpha:AlphaLoss"


@pytest.fixture
def planned_names(monkeypatch):
    """First-party names in the catalog whose families are not installed here."""
    monkeypatch.setitem(catalog.FAMILY_OF_NAME, "PlannedClassificationLoss", "classification")
    monkeypatch.setitem(catalog.FAMILY_OF_NAME, "PlannedSelfSupervisedLoss", "self_supervised")


def test_missing_first_party_name_says_which_extra_to_install(planned_names):
    with pytest.raises(ImportError) as raised:
        from dl_techniques.losses import PlannedClassificationLoss  # noqa: F401

    assert 'pip install "dl-techniques-losses[classification]"' in str(raised.value)


def test_missing_self_supervised_name_names_the_hyphenated_extra(planned_names):
    with pytest.raises(
        registry.LossNotInstalledError, match=r"dl-techniques-losses\[self-supervised\]"
    ):
        registry.get("PlannedSelfSupervisedLoss")


def test_unknown_name_is_an_attribute_error_with_suggestions(plugin_root):
    install_alpha(plugin_root)

    with pytest.raises(AttributeError, match="Did you mean AlphaLoss"):
        losses_package.AlphaLos  # noqa: B018


def test_core_submodule_stays_importable_through_the_package():
    from dl_techniques.losses import core

    assert core.registry is registry


def test_third_party_collision_picks_distribution_sorting_first(plugin_root, caplog):
    install_two_shared_losses(plugin_root)
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        registry.refresh()
        winner = registry.entry("SharedLoss")

    assert winner.distribution == "fake-beta"
    assert "fake-zeta:SharedLoss" in caplog.text
    assert registry.get("fake-zeta:SharedLoss").__module__ == "fake_zeta"
    assert registry.get("fake-beta:SharedLoss").__module__ == "fake_beta"


def test_shadowed_entry_serializes_under_its_qualified_keras_name(plugin_root):
    install_two_shared_losses(plugin_root)
    registry.refresh()

    shadowed = registry.get("fake-zeta:SharedLoss")
    winner = registry.get("SharedLoss")

    assert keras.saving.get_registered_name(winner) == "dl_techniques>SharedLoss"
    assert keras.saving.get_registered_name(shadowed) == "dl_techniques>fake-zeta:SharedLoss"


def test_broken_plugin_is_skipped_by_load_all_and_raised_in_strict_mode(plugin_root, caplog):
    make_distribution(
        plugin_root,
        "fake-broken",
        {"BrokenLoss": "fake_broken:BrokenLoss"},
        {"fake_broken": "raise RuntimeError('plugin bug')\n"},
    )
    install_alpha(plugin_root)

    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        loaded = registry.load_all()

    assert "AlphaLoss" in loaded
    assert "BrokenLoss" not in loaded
    assert "fake-broken:BrokenLoss" in caplog.text
    with pytest.raises(registry.PluginLoadError, match="fake-broken.*plugin bug"):
        registry.load_all(strict=True)
    with pytest.raises(ImportError, match="fake-broken"):
        registry.get("BrokenLoss")


def test_custom_objects_maps_keras_and_bare_names(plugin_root):
    install_alpha(plugin_root)

    objects = registry.custom_objects()

    assert objects["AlphaLoss"] is objects["dl_techniques>AlphaLoss"]
    assert objects["AlphaLoss"].__module__ == "fake_alpha"


def test_keras_deserializes_an_entry_whose_module_was_never_imported(plugin_root):
    install_alpha(plugin_root)
    config = {
        "module": "fake_alpha",
        "class_name": "AlphaLoss",
        "config": {
            "factor": 2.0,
            "name": "alpha",
            "reduction": "sum_over_batch_size",
            "dtype": None,
        },
        "registered_name": "dl_techniques>AlphaLoss",
    }
    assert "fake_alpha" not in sys.modules

    loss = keras.losses.deserialize(config)

    assert type(loss).__module__ == "fake_alpha"
    assert loss.factor == 2.0
    value = loss(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    assert float(value) == pytest.approx(2.0 * 1.5)

import keras

import dl_techniques.losses
from dl_techniques.losses import forecasting
from dl_techniques.losses.core import registry
from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.forecasting.conformance import conformance_cases

PUBLIC_NAMES = tuple(forecasting.__all__)


class TestForecastingConformance(LossConformanceTests):
    cases = conformance_cases()


def test_conformance_cases_cover_every_public_loss():
    assert sorted({case.loss_class.__name__ for case in conformance_cases()}) == sorted(
        PUBLIC_NAMES
    )


def test_entry_points_resolve_to_the_family_classes():
    for name in PUBLIC_NAMES:
        found = registry.entry(name)
        assert found.distribution == "dl-techniques-losses-forecasting"
        assert registry.get(name) is getattr(forecasting, name)
        assert getattr(dl_techniques.losses, name) is getattr(forecasting, name)


def test_keras_registered_names_use_the_library_package():
    for name in PUBLIC_NAMES:
        cls = getattr(forecasting, name)
        assert keras.saving.get_registered_name(cls) == f"dl_techniques>{name}"

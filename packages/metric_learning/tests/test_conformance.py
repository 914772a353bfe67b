import keras

import dl_techniques.losses
from dl_techniques.losses import metric_learning
from dl_techniques.losses.core import registry
from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.metric_learning.conformance import conformance_cases

PUBLIC_NAMES = tuple(metric_learning.__all__)
LOSS_NAMES = ("ContrastivePairLoss", "TripletLoss")


class TestMetricLearningConformance(LossConformanceTests):
    cases = conformance_cases()


def test_conformance_cases_cover_every_loss_and_every_mining_mode():
    cases = conformance_cases()
    assert sorted({case.loss_class.__name__ for case in cases}) == list(LOSS_NAMES)
    minings = {case.init_kwargs["mining"] for case in cases if "mining" in case.init_kwargs}
    assert minings == {"semi_hard", "batch_hard", "batch_all"}


def test_entry_points_resolve_to_the_family_classes():
    for name in PUBLIC_NAMES:
        found = registry.entry(name)
        assert found.distribution == "dl-techniques-losses-metric-learning"
        assert registry.get(name) is getattr(metric_learning, name)
        assert getattr(dl_techniques.losses, name) is getattr(metric_learning, name)


def test_keras_registered_names_use_the_library_package():
    for name in PUBLIC_NAMES:
        cls = getattr(metric_learning, name)
        assert keras.saving.get_registered_name(cls) == f"dl_techniques>{name}"

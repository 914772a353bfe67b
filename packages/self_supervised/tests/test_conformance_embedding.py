import keras

from dl_techniques.losses.core import registry
from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.self_supervised.conformance.embedding import conformance_cases

PUBLIC_NAMES = ("KoLeoLoss", "FeatureAlignmentLoss", "ClusteringLoss")


class TestEmbeddingConformance(LossConformanceTests):
    cases = conformance_cases()


def test_conformance_cases_cover_every_embedding_loss():
    assert sorted(case.loss_class.__name__ for case in conformance_cases()) == sorted(PUBLIC_NAMES)


def test_entry_points_resolve_to_the_classes_under_the_library_name():
    classes = {case.loss_class.__name__: case.loss_class for case in conformance_cases()}
    for name in PUBLIC_NAMES:
        assert registry.entry(name).distribution == "dl-techniques-losses-self-supervised"
        assert registry.get(name) is classes[name]
        assert keras.saving.get_registered_name(classes[name]) == f"dl_techniques>{name}"

import keras

from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.self_supervised.conformance.contrastive import conformance_cases


class TestContrastiveConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_clip_siglip_and_supcon():
    names = {case.loss_class.__name__ for case in conformance_cases()}
    assert names == {"CLIPContrastiveLoss", "SigLIPContrastiveLoss", "SupConLoss"}


def test_keras_registered_names_use_the_library_package():
    for case in conformance_cases():
        name = case.loss_class.__name__
        assert keras.saving.get_registered_name(case.loss_class) == f"dl_techniques>{name}"

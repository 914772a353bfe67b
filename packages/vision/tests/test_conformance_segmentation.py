import keras

from dl_techniques.losses.core import registry
from dl_techniques.losses.core.testing import LossConformanceTests
from dl_techniques.losses.vision.conformance.segmentation import conformance_cases

PUBLIC_NAMES = (
    "SegmentationLossConfig",
    "SegmentationLoss",
    "SegmentationLosses",
    "create_segmentation_loss_function",
)


class TestSegmentationLossConformance(LossConformanceTests):
    cases = conformance_cases()


def test_cases_cover_both_label_forms_and_both_lovasz_losses():
    cases = conformance_cases()
    names = {case.init_kwargs["loss_name"] for case in cases}
    assert {"lovasz", "lovasz_hinge"} <= names
    label_ranks = {case.y_true.ndim - case.y_pred.ndim for case in cases}
    assert label_ranks == {-1, 0}
    assert any(case.init_kwargs["config"]["ignore_index"] is not None for case in cases)


def test_pooled_cases_weight_inside_and_per_image_cases_per_sample():
    for case in conformance_cases():
        per_image = case.init_kwargs["config"]["per_image"]
        assert case.sample_weight == ("per_sample" if per_image else "batch")


def test_entry_points_resolve_to_the_module_objects():
    for name in PUBLIC_NAMES:
        found = registry.entry(name)
        assert found.distribution == "dl-techniques-losses-vision"
        assert registry.get(name).__name__ == name


def test_classes_register_with_keras_under_the_library_package():
    for name in ("SegmentationLossConfig", "SegmentationLoss", "SegmentationLosses"):
        assert keras.saving.get_registered_name(registry.get(name)) == f"dl_techniques>{name}"

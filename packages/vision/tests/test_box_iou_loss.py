import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    backend_gradient,
    float64_enabled,
    gradient_dtype,
    hypothesis_examples,
)
from dl_techniques.losses.vision import BoxIoULoss

PRED = [[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 4.0, 2.0], [5.0, 5.0, 9.0, 15.0], [30, 10, 35, 40]]
TRUE = [[12.0, 18.0, 48.0, 70.0], [6.0, 1.0, 9.0, 8.0], [5.0, 5.0, 9.0, 15.0], [20, 20, 45, 28]]

# Computed offline with torchvision 0.20.0 (its ops/{giou,diou,ciou}_loss.py and
# ops/_utils.py run under torch 2.13, float64):
#   p = torch.tensor(PRED, dtype=torch.float64, requires_grad=True)
#   v = fn(p, torch.tensor(TRUE, dtype=torch.float64), reduction="none", eps=1e-7)
#   v.sum().backward(); v.tolist(), p.grad.tolist()
# for fn in generalized_box_iou_loss, distance_box_iou_loss, complete_box_iou_loss.
TORCHVISION = {
    "giou": (
        [0.31441550578785415, 1.597222221392747, 2.4999999848063226e-09, 1.4576344085655517],
        [
            [
                -0.019142335590768562,
                0.018244609565315182,
                0.019142335590768562,
                -0.018244609565315182,
            ],
            [
                -0.016975308710562416,
                0.0052083332224151235,
                -0.027777777739197533,
                -0.05555555547839506,
            ],
            [0.0, 0.0, 0.0, 0.0],
            [
                0.04598265694823327,
                -0.009192276564081168,
                -0.04598265694823327,
                0.009192276564081168,
            ],
        ],
    ),
    "diou": (
        [0.29505605483091324, 1.2931034480737218, 2.4999999848063226e-09, 0.8716234796819822],
        [
            [
                -0.013880929903909784,
                0.015392164612612528,
                0.013880929903909784,
                -0.01725090067204889,
            ],
            [
                -0.0015457788587477927,
                0.008204518402476529,
                -0.03793103445659929,
                -0.02413793101783591,
            ],
            [0.0, 0.0, 0.0, 0.0],
            [
                0.01664932361881105,
                -0.0013996282301800779,
                -0.01664932361881105,
                0.0027111036399301448,
            ],
        ],
    ),
    "ciou": (
        [0.29562057851377893, 1.3263977271504805, 2.4999999848063226e-09, 1.046147102113936],
        [
            [
                -0.013959399836871477,
                0.015470634545574223,
                0.013959399836871477,
                -0.01732937060501059,
            ],
            [
                -0.011027858018925278,
                0.0271686767228315,
                -0.028448955296421802,
                -0.04310208933819088,
            ],
            [0.0, 0.0, 0.0, 0.0],
            [
                0.026978723573757385,
                -0.0031211948893377995,
                -0.026978723573757385,
                0.00443267029908786,
            ],
        ],
    ),
}


def box_iou_reference(y_true, y_pred, kind, eps=1e-7):
    """Per-box loss from the formulas of Rezatofighi et al. and Zheng et al., float64."""
    t, p = np.asarray(y_true, "float64"), np.asarray(y_pred, "float64")
    tw, th = t[..., 2] - t[..., 0], t[..., 3] - t[..., 1]
    pw, ph = p[..., 2] - p[..., 0], p[..., 3] - p[..., 1]
    iw = np.clip(np.minimum(t[..., 2], p[..., 2]) - np.maximum(t[..., 0], p[..., 0]), 0, None)
    ih = np.clip(np.minimum(t[..., 3], p[..., 3]) - np.maximum(t[..., 1], p[..., 1]), 0, None)
    inter = iw * ih
    union = tw * th + pw * ph - inter
    iou = inter / (union + eps)
    cw = np.maximum(t[..., 2], p[..., 2]) - np.minimum(t[..., 0], p[..., 0])
    ch = np.maximum(t[..., 3], p[..., 3]) - np.minimum(t[..., 1], p[..., 1])
    if kind == "iou":
        return 1 - iou
    if kind == "giou":
        return 1 - iou + (cw * ch - union) / (cw * ch + eps)
    rho2 = ((t[..., 0] + t[..., 2] - p[..., 0] - p[..., 2]) / 2) ** 2
    rho2 = rho2 + ((t[..., 1] + t[..., 3] - p[..., 1] - p[..., 3]) / 2) ** 2
    diou = 1 - iou + rho2 / (cw**2 + ch**2 + eps)
    if kind == "diou":
        return diou
    v = 4 / math.pi**2 * (np.arctan(tw / th) - np.arctan(pw / ph)) ** 2
    return diou + v / (1 - iou + v + eps) * v


def per_box(loss, y_true, y_pred):
    loss.reduction = None
    return as_numpy(loss(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")))


def random_boxes(rng, shape):
    corner = rng.uniform(0.0, 10.0, size=(*shape, 2))
    return np.concatenate([corner, corner + rng.uniform(0.5, 6.0, size=(*shape, 2))], axis=-1)


@pytest.mark.parametrize("kind", ["giou", "diou", "ciou"])
def test_matches_torchvision_value_and_gradient(kind):
    value, gradient = TORCHVISION[kind]
    np.testing.assert_allclose(per_box(BoxIoULoss(kind=kind), TRUE, PRED), value, atol=2e-6)
    dtype = gradient_dtype()
    with float64_enabled():
        actual = backend_gradient(
            lambda p: BoxIoULoss(kind=kind, reduction="sum", dtype=dtype)(TRUE, p),
            PRED,
            dtype=dtype,
        )
    np.testing.assert_allclose(actual, gradient, atol=1e-6 if dtype == "float64" else 1e-5)


def test_hand_checked_values():
    # Two 2x2 squares offset by 1: IoU 2/6, hull 3x2 = union, centres 1 apart, hull diagonal^2 13.
    y_true, y_pred = [[0.0, 0.0, 2.0, 2.0]], [[1.0, 0.0, 3.0, 2.0]]
    np.testing.assert_allclose(per_box(BoxIoULoss(kind="iou"), y_true, y_pred), [2 / 3], 1e-6)
    np.testing.assert_allclose(per_box(BoxIoULoss(kind="giou"), y_true, y_pred), [2 / 3], 1e-6)
    expected = 2 / 3 + 1 / 13
    np.testing.assert_allclose(per_box(BoxIoULoss(kind="diou"), y_true, y_pred), [expected], 1e-6)
    np.testing.assert_allclose(per_box(BoxIoULoss(kind="ciou"), y_true, y_pred), [expected], 1e-6)


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
def test_matches_reference_on_random_boxes_with_a_box_axis(kind):
    rng = np.random.default_rng(7)
    y_true, y_pred = random_boxes(rng, (3, 5)), random_boxes(rng, (3, 5))
    value = per_box(BoxIoULoss(kind=kind), y_true, y_pred)
    assert value.shape == (3, 5)
    np.testing.assert_allclose(value, box_iou_reference(y_true, y_pred, kind), rtol=1e-5, atol=1e-6)


def test_gradient_matches_central_differences_of_the_reference():
    # CIoU's alpha is a constant in the reference's gradient, so check DIoU here.
    rng = np.random.default_rng(3)
    y_true, y_pred = random_boxes(rng, (4,)), random_boxes(rng, (4,))
    assert_gradient_matches_central_differences(
        lambda p, dtype: BoxIoULoss(kind="diou", reduction="sum", dtype=dtype)(y_true, p),
        lambda p: box_iou_reference(y_true, p, "diou"),
        y_pred,
        rtol=1e-4,
        atol=1e-6,
    )


def test_xywh_equals_xyxy_of_the_same_boxes():
    rng = np.random.default_rng(11)
    y_true, y_pred = random_boxes(rng, (6,)), random_boxes(rng, (6,))

    def centre_size(boxes):
        return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)

    corners = per_box(BoxIoULoss(kind="ciou"), y_true, y_pred)
    centres = per_box(
        BoxIoULoss(kind="ciou", box_format="xywh"), centre_size(y_true), centre_size(y_pred)
    )
    np.testing.assert_allclose(centres, corners, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
def test_degenerate_boxes_have_finite_value_and_gradient(kind):
    y_true = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 2.0, 2.0]]
    y_pred = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 8.0]]
    gradient = backend_gradient(
        lambda p: BoxIoULoss(kind=kind, reduction="sum")(y_true, p), y_pred, dtype="float32"
    )
    assert np.all(np.isfinite(per_box(BoxIoULoss(kind=kind), y_true, y_pred)))
    assert np.all(np.isfinite(gradient))


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["iou", "giou", "diou", "ciou"]))
def test_symmetric_zero_on_identical_boxes_and_bounded(seed, kind):
    rng = np.random.default_rng(seed)
    y_true, y_pred = random_boxes(rng, (5,)), random_boxes(rng, (5,))
    forward = per_box(BoxIoULoss(kind=kind), y_true, y_pred)
    np.testing.assert_allclose(per_box(BoxIoULoss(kind=kind), y_pred, y_true), forward, atol=1e-6)
    np.testing.assert_allclose(per_box(BoxIoULoss(kind=kind), y_true, y_true), 0.0, atol=1e-6)
    assert np.all(forward >= -1e-6) and np.all(forward <= (1.0 if kind == "iou" else 2.0) + 1e-5)
    shifted = per_box(BoxIoULoss(kind=kind), y_true + 3.0, y_pred + 3.0)
    np.testing.assert_allclose(shifted, forward, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs", [{"kind": "eiou"}, {"box_format": "cxcywh"}, {"eps": 0.0}, {"eps": float("nan")}]
)
def test_bad_hyper_parameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="BoxIoULoss"):
        BoxIoULoss(**kwargs)


def test_bad_shapes_are_value_errors():
    with pytest.raises(ValueError, match=r"BoxIoULoss.*same shape"):
        BoxIoULoss()(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"BoxIoULoss.*\(\.\.\., 4\)"):
        BoxIoULoss()(np.zeros((2, 5)), np.zeros((2, 5)))

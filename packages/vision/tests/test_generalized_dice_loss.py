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
    log_softmax,
    softmax,
)
from dl_techniques.losses.vision import (
    GeneralizedDiceFocalLoss,
    GeneralizedDiceLoss,
    SegmentationLossConfig,
    create_segmentation_loss_function,
)

# Class 2 is absent from both images, class 3 from the first one.
IDS = [[[0, 1, 1], [0, 3, 1], [1, 1, 0]], [[1, 1, 0], [0, 1, 1], [1, 0, 1]]]

# Computed offline with MONAI 1.6.1 under torch 2.13, float64, channels first:
#   x = torch.tensor(LOGITS).permute(0, 3, 1, 2).requires_grad_(True)
#   v = GeneralizedDiceLoss(softmax=True, to_onehot_y=True, w_type=w, batch=not per_image)(
#       x, torch.tensor(IDS)[:, None]); v.backward()
#   v.item(), x.grad.permute(0, 2, 3, 1)[0, 0].tolist()     (image 0, first row)
# keyed by (w, per_image); MONAI's mean reduction averages the images.
LOGITS = [
    [
        [[0.7, -0.98, -1.57, -2.92], [-0.35, 1.25, 0.03, 0.51], [1.02, -0.88, 2.65, -0.88]],
        [[0.37, 2.74, -0.11, 0.11], [-0.51, 0.33, -2.13, -0.65], [1.69, 0.21, -0.24, 0.37]],
        [[0.41, 0.15, 0.58, -1.66], [0.59, -0.67, 0.79, -0.02], [-1.0, -0.07, -1.01, 1.01]],
    ],
    [
        [[-0.03, 0.85, -1.12, 1.62], [-0.3, 1.37, 0.85, -1.1], [0.32, -0.54, 0.41, 1.43]],
        [[0.69, 1.07, -1.17, 0.2], [0.36, 1.09, -0.62, 0.57], [0.43, -1.52, -1.04, 0.44]],
        [[-1.18, -1.23, 0.9, 0.29], [-0.24, 0.11, -0.4, -0.54], [-0.46, 0.39, 1.32, -0.47]],
    ],
]
MONAI = {
    ("square", False): (
        0.9457586964494187,
        [
            [
                -0.0014263589140890787,
                0.0005208091832091434,
                0.0007191238710994351,
                0.00018642585978050001,
            ],
            [
                -0.00012222454897413982,
                -0.0015136858329192553,
                0.0006253302201658,
                0.0010105801617275954,
            ],
            [
                -0.0006824304268080037,
                -0.00014395795470333335,
                0.0008028606186294407,
                2.352776288189606e-05,
            ],
        ],
    ),
    ("square", True): (
        0.8407478985971607,
        [
            [
                -0.004301343163962121,
                0.0019167783071318786,
                0.0018936536031711271,
                0.0004909112536591146,
            ],
            [
                2.1019458861419307e-05,
                -0.003937754832447098,
                0.0014971804205195854,
                0.0024195549530660935,
            ],
            [
                -0.0012274406137049603,
                -0.000369983222081684,
                0.001551944240391629,
                4.547959539501517e-05,
            ],
        ],
    ),
    ("simple", False): (
        0.8868705470432,
        [
            [
                -0.005322049045910741,
                0.0026589754008905946,
                0.002114825683586545,
                0.0005482479614336015,
            ],
            [
                0.0004836186039738837,
                -0.00526227496655766,
                0.0018266515503450988,
                0.002952004812238677,
            ],
            [
                -0.0009040815310962742,
                -0.0004883663360887787,
                0.0013528040580784721,
                3.964380910658095e-05,
            ],
        ],
    ),
    ("simple", True): (
        0.8002469132119864,
        [
            [
                -0.007948135540853673,
                0.004173049520774928,
                0.0029979076575445737,
                0.0007771783625341692,
            ],
            [
                0.0010709811040357116,
                -0.008012234515320049,
                0.002653308868228638,
                0.004287944543055699,
            ],
            [
                -0.000835702135938833,
                -0.0007391206787382487,
                0.0015299866836354513,
                4.483613104162961e-05,
            ],
        ],
    ),
    ("uniform", False): (
        0.7516335705924545,
        [
            [
                -0.010144652054203285,
                0.005974361276762684,
                0.0033117514645708414,
                0.0008585393128697577,
            ],
            [0.00287776976412347, -0.01388652053425257, 0.004208118378017514, 0.006800632392111582],
            [
                0.00020267455726516917,
                -0.0012674138598632006,
                0.0010344255489163209,
                3.0313753681710238e-05,
            ],
        ],
    ),
    ("uniform", True): (
        0.7516333618054675,
        [
            [
                -0.010144649236245943,
                0.0059743596172188084,
                0.003311750544640391,
                0.0008585390743867479,
            ],
            [
                0.002877768964743424,
                -0.013886516676887898,
                0.004208117209096392,
                0.006800630503048079,
            ],
            [
                0.0002026745009667125,
                -0.0012674135078039907,
                0.001034425261576051,
                3.0313745261227808e-05,
            ],
        ],
    ),
}


def generalized_dice_reference(ids, logits, weight_type, per_image, smooth=1e-5, valid=None):
    """Sudre et al.'s generalized Dice with MONAI's rule for absent classes, in float64."""
    p = softmax(np.asarray(logits, "float64"))
    y = np.eye(p.shape[-1])[np.asarray(ids)]
    if valid is not None:
        p, y = p * valid[..., None], y * valid[..., None]
    axes = tuple(range(1, p.ndim - 1)) if per_image else tuple(range(p.ndim - 1))
    tp, total_p, total_y = (p * y).sum(axes), p.sum(axes), y.sum(axes)
    with np.errstate(divide="ignore"):
        w = {"square": 1 / total_y**2, "simple": 1 / total_y, "uniform": np.ones_like(total_y)}
    w = w[weight_type]
    finite = np.where(np.isinf(w), 0.0, w)
    w = np.where(np.isinf(w), finite.max(axis=-1, keepdims=True), w)
    value = 1 - (2 * (w * tp).sum(-1) + smooth) / ((w * (total_p + total_y)).sum(-1) + smooth)
    return value


def focal_reference(ids, logits, gamma, alpha, per_image, valid=None):
    log_p = log_softmax(np.asarray(logits, "float64"))
    y = np.eye(log_p.shape[-1])[np.asarray(ids)]
    per_pixel = -alpha * (y * (1 - np.exp(log_p)) ** gamma * log_p).sum(-1)
    valid = np.ones(per_pixel.shape) if valid is None else valid
    axes = tuple(range(1, per_pixel.ndim)) if per_image else None
    return (per_pixel * valid).sum(axes) / valid.sum(axes)


def value_of(loss, y_true, y_pred):
    loss.reduction = None
    return as_numpy(loss(np.asarray(y_true), np.asarray(y_pred, "float32")))


@pytest.mark.parametrize(("weight_type", "per_image"), sorted(MONAI))
def test_matches_monai_value_and_gradient(weight_type, per_image):
    expected_value, expected_gradient = MONAI[(weight_type, per_image)]
    loss = GeneralizedDiceLoss(4, weight_type=weight_type, per_image=per_image)
    value = np.mean(value_of(loss, IDS, LOGITS))
    np.testing.assert_allclose(value, expected_value, rtol=2e-6)
    dtype = gradient_dtype()
    reduction = "sum_over_batch_size"
    with float64_enabled():
        gradient = backend_gradient(
            lambda x: GeneralizedDiceLoss(
                4, weight_type=weight_type, per_image=per_image, reduction=reduction, dtype=dtype
            )(np.asarray(IDS), x),
            LOGITS,
            dtype=dtype,
        )
    np.testing.assert_allclose(gradient[0, 0], expected_gradient, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("weight_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("per_image", [False, True])
def test_matches_reference_with_one_hot_labels_and_ignored_pixels(weight_type, per_image):
    rng = np.random.default_rng(len(weight_type) + per_image)
    logits = rng.normal(size=(3, 5, 4, 3))
    ids = rng.integers(0, 2, size=(3, 5, 4))
    ignored = rng.uniform(size=ids.shape) < 0.2
    loss = GeneralizedDiceLoss(3, weight_type=weight_type, ignore_index=255, per_image=per_image)
    value = value_of(loss, np.where(ignored, 255, ids), logits)
    expected = generalized_dice_reference(ids, logits, weight_type, per_image, valid=~ignored)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    one_hot = np.eye(3)[ids]
    plain = GeneralizedDiceLoss(3, weight_type=weight_type, per_image=per_image)
    expected = generalized_dice_reference(ids, logits, weight_type, per_image)
    np.testing.assert_allclose(value_of(plain, one_hot, logits), expected, rtol=1e-5)


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(2)
    logits, ids = rng.normal(size=(2, 3, 3, 3)), rng.integers(0, 2, size=(2, 3, 3))
    assert_gradient_matches_central_differences(
        lambda x, dtype: GeneralizedDiceLoss(3, dtype=dtype)(ids, x),
        lambda x: generalized_dice_reference(ids, x, "square", False),
        logits,
        rtol=1e-4,
        atol=1e-8,
    )


def test_focal_variant_adds_the_softmax_focal_term():
    rng = np.random.default_rng(4)
    logits, ids = rng.normal(size=(2, 4, 4, 3)), rng.integers(0, 3, size=(2, 4, 4))
    for per_image in (False, True):
        loss = GeneralizedDiceFocalLoss(
            3, per_image=per_image, gamma=1.5, lambda_gdl=0.7, lambda_focal=0.4, focal_alpha=0.5
        )
        expected = 0.7 * generalized_dice_reference(ids, logits, "square", per_image)
        expected = expected + 0.4 * focal_reference(ids, logits, 1.5, 0.5, per_image)
        np.testing.assert_allclose(value_of(loss, ids, logits), expected, rtol=1e-5)
    default = GeneralizedDiceFocalLoss(3)
    expected = generalized_dice_reference(ids, logits, "square", False)
    expected = expected + focal_reference(ids, logits, 2.0, 1.0, False)
    np.testing.assert_allclose(value_of(default, ids, logits), expected, rtol=1e-5)


def test_factory_names():
    rng = np.random.default_rng(6)
    logits, ids = rng.normal(size=(2, 4, 4, 3)), rng.integers(0, 3, size=(2, 4, 4))
    config = SegmentationLossConfig(3, from_logits=True, smooth=1e-5, dice_weight=0.3)
    gdl = as_numpy(create_segmentation_loss_function("generalized_dice", config)(ids, logits))
    expected = generalized_dice_reference(ids, logits, "square", False)
    np.testing.assert_allclose(gdl, expected, rtol=1e-5)
    pair = create_segmentation_loss_function("generalized_dice_focal", config)(ids, logits)
    focal = focal_reference(ids, logits, config.focal_gamma, config.focal_alpha, False)
    np.testing.assert_allclose(as_numpy(pair), 0.3 * expected + 0.5 * focal, rtol=1e-5)


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), weight_type=st.sampled_from(["square", "simple"]))
def test_bounded_zero_when_perfect_and_invariant_to_volume_scaling(seed, weight_type):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, size=(2, 3, 4))
    logits = rng.normal(scale=2.0, size=(2, 3, 4, 3))
    value = value_of(GeneralizedDiceLoss(3, weight_type=weight_type), ids, logits)
    assert 0.0 <= value <= 1.0
    perfect = np.eye(3)[ids]
    exact = GeneralizedDiceLoss(3, weight_type=weight_type, from_logits=False)
    np.testing.assert_allclose(value_of(exact, ids, perfect), 0.0, atol=1e-6)
    if weight_type == "square":
        # Repeating the batch doubles every volume; square weights undo it
        # (exactly with negligible smooths).
        loss = GeneralizedDiceLoss(3, smooth_nr=1e-12, smooth_dr=1e-12)
        tiled = value_of(loss, np.tile(ids, (2, 1, 1)), np.tile(logits, (2, 1, 1, 1)))
        np.testing.assert_allclose(tiled, value_of(loss, ids, logits), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 1},
        {"weight_type": "cube"},
        {"smooth_dr": 0.0},
        {"smooth_nr": -1.0},
        {"from_logits": 1},
        {"ignore_index": 2.5},
        {"per_image": "yes"},
    ],
)
def test_bad_hyper_parameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="GeneralizedDiceLoss"):
        GeneralizedDiceLoss(**{"num_classes": 3, **kwargs})


@pytest.mark.parametrize("kwargs", [{"gamma": -1.0}, {"lambda_focal": -0.5}, {"focal_alpha": 0.0}])
def test_focal_variant_bad_hyper_parameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="GeneralizedDiceFocalLoss"):
        GeneralizedDiceFocalLoss(3, **kwargs)

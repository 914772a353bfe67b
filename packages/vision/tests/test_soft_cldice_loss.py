import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing import numeric
from dl_techniques.losses.vision import (
    SegmentationLossConfig,
    SoftCLDiceLoss,
    SoftDiceCLDiceLoss,
    create_segmentation_loss_function,
)

# Computed offline with MONAI 1.6.1 under torch 2.13, float64, channels first:
#   x = torch.tensor(LOGITS).permute(0, 3, 1, 2).requires_grad_(True)
#   loss = SoftclDiceLoss(iter_=3, smooth_nr=1.0, smooth_dr=1.0, include_background=b,
#                         softmax=True, to_onehot_y=True, reduction="none")
#   v = loss(x, torch.tensor(IDS)[:, None])
#   v.sum().backward(); v.tolist(), x.grad.permute(0, 2, 3, 1)[1, 3].tolist()
# (image 1, row 3), keyed by include_background b.
LOGITS = [
    [
        [
            [0.72, 3.02, -3.57],
            [3.37, -0.09, -1.6],
            [-1.61, -2.17, -0.45],
            [1.67, 1.17, 1.28],
            [-3.39, -3.14, 3.11],
            [1.94, 4.37, 2.42],
        ],
        [
            [-2.05, 2.57, 1.26],
            [0.43, -1.64, 0.01],
            [-0.29, 1.79, 0.25],
            [3.17, -1.55, 0.94],
            [1.0, -1.73, -2.36],
            [2.03, 1.03, -0.33],
        ],
        [
            [0.79, -1.35, 0.48],
            [-1.21, 0.38, 1.97],
            [-0.68, 1.7, -2.07],
            [-0.58, -2.73, -0.2],
            [0.16, -0.39, -0.54],
            [2.68, 2.85, -2.43],
        ],
        [
            [2.35, -3.45, -1.47],
            [-0.35, 0.22, -2.09],
            [-1.44, 0.15, -1.39],
            [-1.28, 1.33, 1.86],
            [-0.12, 0.04, -0.04],
            [-0.91, -1.02, -2.08],
        ],
        [
            [1.3, -0.17, -0.27],
            [0.4, 1.06, 2.84],
            [-0.55, -0.8, 0.4],
            [-1.69, 2.54, 1.85],
            [1.39, -0.24, 1.48],
            [2.1, 1.0, -0.56],
        ],
        [
            [-3.37, 1.89, -0.71],
            [-1.69, 1.78, 0.68],
            [-2.84, -0.2, -0.54],
            [1.99, -3.79, -0.77],
            [-0.28, 2.84, -2.17],
            [-5.88, -2.77, 0.53],
        ],
    ],
    [
        [
            [1.62, 3.47, 0.8],
            [-1.6, 1.77, -0.02],
            [-0.4, 0.04, 2.55],
            [-1.8, -2.05, -0.13],
            [-0.13, -1.63, -1.76],
            [0.76, 2.68, 1.43],
        ],
        [
            [1.37, 2.49, -3.98],
            [-3.02, -1.41, -2.39],
            [-1.98, 0.14, -2.57],
            [-0.89, -4.09, -1.95],
            [2.69, -1.09, 0.65],
            [1.42, -0.98, 1.16],
        ],
        [
            [0.43, 1.39, -1.27],
            [-2.88, -2.04, -1.11],
            [1.07, -0.41, -0.8],
            [-0.36, 2.2, -1.15],
            [3.02, -2.46, -1.18],
            [1.71, 1.04, -1.71],
        ],
        [
            [-0.22, -1.42, 1.7],
            [1.08, -1.43, 0.79],
            [-0.73, -0.14, 0.13],
            [-1.13, 0.85, 0.92],
            [0.85, 2.21, -0.54],
            [-2.97, -0.98, 0.4],
        ],
        [
            [0.04, 1.16, 1.61],
            [-0.24, -0.22, -1.97],
            [2.07, -0.53, -2.17],
            [-2.23, -0.83, 3.11],
            [1.55, -3.39, -0.25],
            [0.53, 1.25, 0.69],
        ],
        [
            [-1.28, 0.82, -1.11],
            [-4.48, -1.42, -1.37],
            [1.91, 2.11, -2.09],
            [0.35, 0.18, -2.87],
            [-4.11, -0.19, 0.27],
            [-1.19, -5.42, -0.06],
        ],
    ],
]
IDS = [
    [
        [0, 0, 0, 0, 2, 0],
        [0, 0, 0, 0, 2, 0],
        [1, 1, 1, 1, 2, 1],
        [0, 0, 0, 0, 2, 0],
        [0, 0, 0, 0, 2, 0],
        [0, 0, 0, 0, 2, 0],
    ],
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 2, 2, 2, 2, 2],
        [0, 1, 0, 1, 1, 0],
        [0, 0, 0, 1, 1, 0],
    ],
]
MONAI = {
    False: (
        [0.7313731035275238, 0.7103249896865786],
        [
            [-0.0012428259154862082, 0.0006954051720756332, 0.0005474207434105747],
            [0.013525409829001165, -0.0012073769797070187, -0.012318032849294147],
            [0.004357249013247335, 0.0117194313104282, -0.016076680323675537],
            [0.0014130573339417164, 0.015271563138861369, -0.016684620472803086],
            [-0.001821182125202799, 0.0013361794127242782, 0.0004850027124785198],
            [0.0013157151301300045, 0.00526839306509249, -0.006584108195222491],
        ],
    ),
    True: (
        [0.6349593962011822, 0.6448509423154085],
        [
            [-0.004397682364499394, 0.00019599409553895352, 0.00420168826896044],
            [0.009927621387836441, -0.0005940795860353125, -0.00933354180180113],
            [0.0037055683645741072, 0.006708990642326795, -0.010414559006900902],
            [0.0012282108405025929, 0.00919214915628803, -0.01042035999679062],
            [0.00012111546305422934, 0.0004718892558957141, -0.0005930047189499438],
            [0.0016705858847372598, 0.002606413017708315, -0.004276998902445574],
        ],
    ),
}

# SoftDiceCLDiceLoss on the same LOGITS and IDS, computed offline with MONAI 1.6.1 under
# torch 2.13, float64, channels first (MONAI pip-installed with --no-deps into /tmp/refpkgs,
# run with PYTHONPATH=/tmp/refpkgs):
#   x = torch.tensor(LOGITS).permute(0, 3, 1, 2).requires_grad_(True)
#   loss = SoftDiceclDiceLoss(iter_=3, alpha=0.3, smooth_nr=1.0, smooth_dr=1.0,
#                             include_background=b, softmax=True, to_onehot_y=True,
#                             reduction="mean")
#   v = loss(x, torch.tensor(IDS)[:, None])
#   v.backward(); v.item(), x.grad.permute(0, 2, 3, 1)[1, 3].tolist()
# (image 1, row 3), keyed by include_background b.
MONAI_DICE_CLDICE = {
    False: (
        0.72488277440925,
        [
            [-0.0005251883453081133, 8.031274012921888e-05, 0.0004448756051788941],
            [0.005826326144192652, 0.00022098667721397812, -0.006047312821406631],
            [0.0020351762110385066, 0.004984970527382197, -0.0070201467384207045],
            [0.0006741944549760883, 0.006590537491958431, -0.007264731946934519],
            [-0.00042090536096062127, 0.001218346654171405, -0.0007974412932107841],
            [0.000544358743355794, 0.0037404421931109904, -0.0042848009364667835],
        ],
    ),
    True: (
        0.6511622014420874,
        [
            [-0.001404186847953617, 3.5335769967784084e-05, 0.0013688510779858328],
            [0.004409295890667536, 0.00014089165920927292, -0.004550187549876809],
            [0.0017215462824671686, 0.0030518076552105925, -0.004773353937677761],
            [0.0005841783751842184, 0.004201068625480977, -0.0047852470006651965],
            [0.00016512341268559266, 0.0005187028500375524, -0.0006838262627231453],
            [0.0005227199849188731, 0.002349550052667958, -0.00287227003758683],
        ],
    ),
}


def _window(x, axis, pick):
    padded = np.concatenate([np.take(x, [0], axis), x, np.take(x, [-1], axis)], axis)
    n = x.shape[axis]
    parts = [np.take(padded, range(k, k + n), axis) for k in range(3)]
    return pick(pick(parts[0], parts[1]), parts[2])


def erode(x):
    spatial = range(1, x.ndim - 1)
    return np.minimum.reduce([_window(x, axis, np.minimum) for axis in spatial])


def dilate(x):
    for axis in range(1, x.ndim - 1):
        x = _window(x, axis, np.maximum)
    return x


def skeleton(x, iterations):
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    skel = relu(x - dilate(erode(x)))
    for _ in range(iterations):
        x = erode(x)
        delta = relu(x - dilate(erode(x)))
        skel = skel + relu(delta - skel * delta)
    return skel


def cldice_reference(ids, logits, iterations=3, smooth=1.0, include_background=False):
    """Shit et al.'s soft clDice per image from the formulas, float64, channels last."""
    p = numeric.softmax(np.asarray(logits, "float64"))
    y = np.eye(p.shape[-1])[np.asarray(ids)]
    if not include_background:
        p, y = p[..., 1:], y[..., 1:]
    axes = tuple(range(1, p.ndim))
    sp, sy = skeleton(p, iterations), skeleton(y, iterations)
    tprec = ((sp * y).sum(axes) + smooth) / (sp.sum(axes) + smooth)
    tsens = ((sy * p).sum(axes) + smooth) / (sy.sum(axes) + smooth)
    return 1 - 2 * tprec * tsens / (tprec + tsens + 1e-4)


def per_image(loss, y_true, y_pred):
    loss.reduction = None
    return numeric.as_numpy(loss(np.asarray(y_true), np.asarray(y_pred, "float32")))


@pytest.mark.parametrize("include_background", [False, True])
def test_matches_monai_value_and_gradient(include_background):
    expected_value, expected_gradient = MONAI[include_background]
    loss = SoftCLDiceLoss(include_background=include_background)
    np.testing.assert_allclose(per_image(loss, IDS, LOGITS), expected_value, rtol=1e-5)
    dtype = numeric.gradient_dtype()
    with numeric.float64_enabled():
        gradient = numeric.backend_gradient(
            lambda x: SoftCLDiceLoss(
                include_background=include_background, reduction="sum", dtype=dtype
            )(np.asarray(IDS), x),
            LOGITS,
            dtype=dtype,
        )
    np.testing.assert_allclose(gradient[1, 3], expected_gradient, rtol=1e-4, atol=1e-8)


def test_matches_reference_in_3d_with_one_hot_labels():
    rng = np.random.default_rng(8)
    logits = rng.normal(scale=2.0, size=(2, 5, 4, 6, 3))
    ids = rng.integers(0, 3, size=(2, 5, 4, 6))
    loss = SoftCLDiceLoss(iterations=2, smooth=0.5)
    value = per_image(loss, np.eye(3)[ids], logits)
    np.testing.assert_allclose(value, cldice_reference(ids, logits, 2, 0.5), rtol=1e-5)


def test_compiled_gradient_matches_central_differences():
    rng = np.random.default_rng(9)
    logits = rng.normal(scale=2.0, size=(2, 5, 5, 2))
    ids = rng.integers(0, 2, size=(2, 5, 5))
    loss = SoftCLDiceLoss(reduction="sum")
    numeric.assert_gradient_matches_central_differences(
        lambda x, dtype: loss(ids, x),
        lambda x: cldice_reference(ids, x),
        logits,
        rtol=2e-3,
        atol=2e-5,
        dtype="float32",
        compiled=True,
    )


def test_a_perfect_line_scores_zero_and_a_broken_line_does_not():
    line = np.zeros((1, 7, 7), int)
    line[0, :, 3] = 1
    exact = SoftCLDiceLoss(from_logits=False, smooth=1e-3)
    assert per_image(exact, line, np.eye(2)[line])[0] < 1e-3
    broken = np.eye(2)[line]
    broken[0, 3, 3] = [1.0, 0.0]
    assert per_image(exact, line, broken)[0] > 0.05


def test_single_channel_logits_use_a_sigmoid_and_combine_with_dice():
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(2, 6, 6, 1))
    labels = rng.integers(0, 2, size=(2, 6, 6, 1))
    p = 1.0 / (1.0 + np.exp(-logits))
    two_channels = np.log(np.concatenate([1.0 - p, p], axis=-1))
    single = per_image(SoftCLDiceLoss(), labels, logits)
    np.testing.assert_allclose(single, cldice_reference(labels[..., 0], two_channels), rtol=1e-5)
    config = SegmentationLossConfig(2, from_logits=True)
    dice = create_segmentation_loss_function("dice", config)
    combined = 0.5 * dice + 0.5 * SoftCLDiceLoss()
    ids, pair = labels[..., 0], two_channels.astype("float32")
    expected = 0.5 * numeric.as_numpy(dice(ids, pair)) + 0.5 * cldice_reference(ids, pair).mean()
    np.testing.assert_allclose(numeric.as_numpy(combined(ids, pair)), expected, rtol=1e-5)


@settings(max_examples=numeric.hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), iterations=st.integers(0, 4))
def test_bounded_and_skeleton_inside_the_mask(seed, iterations):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, size=(2, 6, 5))
    logits = rng.normal(scale=3.0, size=(2, 6, 5, 3))
    value = per_image(SoftCLDiceLoss(iterations=iterations), ids, logits)
    assert np.all(value >= -1e-6) and np.all(value <= 1.0)
    mask = np.eye(3)[ids]
    skel = skeleton(mask, iterations)
    assert np.all(skel <= mask + 1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"iterations": -1}, {"iterations": 1.5}, {"smooth": 0.0}, {"from_logits": 0}],
)
def test_bad_hyper_parameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="SoftCLDiceLoss"):
        SoftCLDiceLoss(**kwargs)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match=r"SoftCLDiceLoss.*\(batch, height, width"):
        SoftCLDiceLoss()(np.zeros((2, 4)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"SoftCLDiceLoss.*y_true"):
        SoftCLDiceLoss()(np.full((1, 3, 3), 5), np.zeros((1, 3, 3, 3)))


def dice_cldice_reference(ids, logits, alpha, iterations=3, smooth=1.0, include_background=False):
    """(1 - alpha) per-image mean-over-classes soft Dice + alpha clDice, float64."""
    p = numeric.softmax(np.asarray(logits, "float64"))
    y = np.eye(p.shape[-1])[np.asarray(ids)]
    if not include_background:
        p, y = p[..., 1:], y[..., 1:]
    spatial = tuple(range(1, p.ndim - 1))
    score = (2 * (p * y).sum(spatial) + smooth) / (p.sum(spatial) + y.sum(spatial) + smooth)
    dice = (1 - score).mean(-1)
    cldice = cldice_reference(ids, logits, iterations, smooth, include_background)
    return (1 - alpha) * dice + alpha * cldice


@pytest.mark.parametrize("include_background", [False, True])
def test_dice_cldice_matches_monai_value_and_gradient(include_background):
    expected_value, expected_gradient = MONAI_DICE_CLDICE[include_background]
    loss = SoftDiceCLDiceLoss(alpha=0.3, include_background=include_background)
    value = numeric.as_numpy(loss(np.asarray(IDS), np.asarray(LOGITS, "float32")))
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    reference = dice_cldice_reference(IDS, LOGITS, 0.3, include_background=include_background)
    np.testing.assert_allclose(reference.mean(), expected_value, rtol=1e-12)
    dtype = numeric.gradient_dtype()
    with numeric.float64_enabled():
        gradient = numeric.backend_gradient(
            lambda x: SoftDiceCLDiceLoss(
                alpha=0.3, include_background=include_background, dtype=dtype
            )(np.asarray(IDS), x),
            LOGITS,
            dtype=dtype,
        )
    np.testing.assert_allclose(gradient[1, 3], expected_gradient, rtol=1e-4, atol=1e-8)


def test_dice_cldice_gradient_matches_central_differences_of_the_reference():
    numeric.assert_gradient_matches_central_differences(
        lambda x, dtype: SoftDiceCLDiceLoss(alpha=0.7, smooth=0.5, reduction="sum", dtype=dtype)(
            np.asarray(IDS)[..., None], x
        ),
        lambda x: dice_cldice_reference(IDS, x, 0.7, smooth=0.5),
        LOGITS,
        rtol=1e-4,
        atol=1e-8,
        float32_rtol=2e-3,
        float32_atol=2e-5,
    )


def test_dice_cldice_compiled_gradient_matches_central_differences_of_the_reference():
    # No erosion beyond the first opening keeps the compiled graph small; the
    # skeleton's compiled gradient at depth 3 is checked for SoftCLDiceLoss above.
    rng = np.random.default_rng(9)
    logits = rng.normal(scale=2.0, size=(2, 5, 5, 2))
    ids = rng.integers(0, 2, size=(2, 5, 5))
    loss = SoftDiceCLDiceLoss(alpha=0.4, iterations=0, reduction="sum")
    numeric.assert_gradient_matches_central_differences(
        lambda x, dtype: loss(ids, x),
        lambda x: dice_cldice_reference(ids, x, 0.4, iterations=0),
        logits,
        rtol=2e-3,
        atol=2e-5,
        dtype="float32",
        compiled=True,
    )


def test_dice_cldice_matches_reference_in_3d_with_one_hot_labels():
    rng = np.random.default_rng(13)
    logits = rng.normal(scale=2.0, size=(2, 5, 4, 6, 3))
    ids = rng.integers(0, 3, size=(2, 5, 4, 6))
    loss = SoftDiceCLDiceLoss(alpha=0.25, iterations=2, include_background=True)
    expected = dice_cldice_reference(ids, logits, 0.25, 2, 1.0, include_background=True)
    np.testing.assert_allclose(per_image(loss, np.eye(3)[ids], logits), expected, rtol=1e-5)


@pytest.mark.parametrize("include_background", [False, True])
def test_dice_cldice_equals_the_loss_algebra_with_the_same_dice(include_background):
    class_weights = None if include_background else (0.0, 1.0, 1.0)
    config = SegmentationLossConfig(
        3, from_logits=True, smooth=1.0, per_image=True, class_weights=class_weights
    )
    dice = create_segmentation_loss_function("dice", config)
    ids, logits = np.asarray(IDS), np.asarray(LOGITS, "float32")
    for alpha in (0.5, 0.3):
        cldice = SoftCLDiceLoss(include_background=include_background)
        algebra = (1 - alpha) * dice + alpha * cldice
        named = SoftDiceCLDiceLoss(alpha=alpha, include_background=include_background)
        expected = numeric.as_numpy(algebra(ids, logits))
        np.testing.assert_allclose(numeric.as_numpy(named(ids, logits)), expected, rtol=1e-6)


@settings(max_examples=numeric.hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), alpha=st.floats(0.0, 1.0))
def test_dice_cldice_is_the_convex_combination_of_its_ends(seed, alpha):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, size=(2, 6, 5))
    logits = rng.normal(scale=3.0, size=(2, 6, 5, 3))
    value = per_image(SoftDiceCLDiceLoss(alpha=alpha), ids, logits)
    dice_only = per_image(SoftDiceCLDiceLoss(alpha=0.0), ids, logits)
    cldice_only = per_image(SoftDiceCLDiceLoss(alpha=1.0), ids, logits)
    np.testing.assert_allclose(cldice_only, per_image(SoftCLDiceLoss(), ids, logits), rtol=1e-6)
    expected = (1 - alpha) * dice_only + alpha * cldice_only
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-7)
    assert np.all(value >= -1e-6) and np.all(value <= 1.0)


def test_dice_cldice_of_a_perfect_line_is_zero_and_of_a_broken_line_is_not():
    line = np.zeros((1, 7, 7), int)
    line[0, :, 3] = 1
    exact = SoftDiceCLDiceLoss(from_logits=False, smooth=1e-3)
    assert per_image(exact, line, np.eye(2)[line])[0] < 1e-3
    broken = np.eye(2)[line]
    broken[0, 3, 3] = [1.0, 0.0]
    assert per_image(exact, line, broken)[0] > 0.05


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": -0.1}, {"alpha": 1.5}, {"alpha": float("nan")}, {"alpha": True}, {"smooth": 0.0}],
)
def test_dice_cldice_bad_hyper_parameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match=f"SoftDiceCLDiceLoss.*{next(iter(kwargs))}"):
        SoftDiceCLDiceLoss(**kwargs)


def test_dice_cldice_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match=r"SoftDiceCLDiceLoss.*\(batch, height, width"):
        SoftDiceCLDiceLoss()(np.zeros((2, 4)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"SoftDiceCLDiceLoss.*y_true"):
        SoftDiceCLDiceLoss()(np.full((1, 3, 3), 5), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"SoftDiceCLDiceLoss.*y_pred"):
        SoftDiceCLDiceLoss(from_logits=False)(np.zeros((1, 3, 3)), np.full((1, 3, 3, 2), 1.5))

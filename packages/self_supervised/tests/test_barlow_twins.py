import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    backend_gradient,
    compiled,
    gradient_dtype,
    hypothesis_examples,
)
from dl_techniques.losses.self_supervised import BarlowTwinsLoss

# The loss of the authors' code (facebookresearch/barlowtwins main.py,
# BarlowTwins.forward, one process, self.bn = nn.BatchNorm1d(3, affine=False)
# in training mode), transcribed in torch 2.13.0 float64 and run offline as
#   x = torch.tensor(views[:5]).requires_grad_(True); y from views[5:]
# with views the `official_views` fixture (conftest.py)
#   v = barlow(x, y, lambd); v.backward(); v.item(), x.grad.tolist(), y.grad.tolist()
OFFICIAL = {
    0.0051: (
        0.4258810503787706,
        [
            [-0.010384661785431765, -0.005652879997705765, -0.7522709878705662],
            [-0.0029394516083649357, -0.0007655663782218419, 0.14454137699878208],
            [0.008542810351030614, -0.013735948562083504, -0.0756819010883888],
            [-0.0026634052795611258, 0.009362610752876359, 0.10878457306124185],
            [0.007444708322327206, 0.010791784185134755, 0.574626938898931],
        ],
        [
            [0.008089412721808178, 0.01044927815896833, 0.03380909093836087],
            [0.0024165452157958118, -0.0040046163312299305, -0.4662378250593705],
            [-0.0037327201821260652, 0.011106739190021708, 0.41386366125760243],
            [-0.0010996226786196522, -0.008759250556145534, 0.32438459605736675],
            [-0.005673615076858275, -0.008792150461614568, -0.30581952319395955],
        ],
    ),
    0.2: (
        0.6746269456223479,
        [
            [-0.061972821728546026, -0.04435921176878627, -0.6469292816605835],
            [-0.002240256835141397, -0.037221873400044674, 0.060950954621736594],
            [0.04395396464984332, -0.07452425671901726, -0.10661492959970276],
            [-0.016160861004579394, 0.040895929502790036, 0.10299220854117556],
            [0.036419974918423505, 0.11520941238505819, 0.5896010480973741],
        ],
        [
            [-0.0030859873733096814, 0.02592809959068044, 0.0617207031121357],
            [-0.005261121078950641, -0.11593485365965187, -0.49509277524379536],
            [0.010937693432856931, 0.031338231320694895, 0.41386436526582615],
            [0.00676565618926673, 0.07925117246233274, 0.2216805284275802],
            [-0.009356241169863342, -0.020582649714056194, -0.2021728215617467],
        ],
    ),
}


def barlow_twins_reference(first, second, lambda_offdiag=0.0051, weights=None):
    """Barlow Twins (Zbontar et al. 2021, eq. 1) in float64, frequency weights on the samples."""
    first, second = np.asarray(first, "float64"), np.asarray(second, "float64")
    weights = np.ones(len(first)) if weights is None else np.asarray(weights, "float64")
    total = weights.sum()

    def normalise(view):
        centred = view - np.sum(weights[:, None] * view, axis=0) / total
        variance = np.sum(weights[:, None] * centred**2, axis=0) / total
        return centred / np.sqrt(variance + 1e-5)

    correlation = (weights[:, None] * normalise(first)).T @ normalise(second) / total
    diagonal = np.diag(correlation)
    off_diagonal = np.sum(correlation**2) - np.sum(diagonal**2)
    return np.sum((1.0 - diagonal) ** 2) + lambda_offdiag * off_diagonal


def random_views(seed, batch=5, features=3):
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(batch, features))
    second = first + 0.7 * rng.normal(size=(batch, features))
    return first.astype("float32"), second.astype("float32")


def whitened(seed, batch=5, features=3):
    """Views with zero-mean columns, biased variance 1 and no correlation between columns."""
    rng = np.random.default_rng(seed)
    columns = rng.normal(size=(batch, features))
    orthonormal, _ = np.linalg.qr(columns - columns.mean(axis=0))
    return (np.sqrt(batch) * orthonormal).astype("float32")


def value(loss, first, second, sample_weight=None):
    return float(as_numpy(loss(None, {"view1": first, "view2": second}, sample_weight)))


def test_hand_checked_value():
    first = [[1.0, 1.0], [-1.0, -1.0]]
    second = [[1.0, -1.0], [-1.0, 1.0]]
    # Both views normalise to +-1 / sqrt(1 + 1e-5) = +-s, so c = s^2 [[1, -1], [1, -1]]:
    # (1 - s^2)^2 + (1 + s^2)^2 on the diagonal, 2 s^4 off it.
    scale = 1.0 / (1.0 + 1e-5)
    expected = (1.0 - scale) ** 2 + (1.0 + scale) ** 2 + 0.5 * 2.0 * scale**2
    np.testing.assert_allclose(value(BarlowTwinsLoss(0.5), first, second), expected, rtol=1e-6)


@pytest.mark.parametrize("lambda_offdiag", list(OFFICIAL))
def test_matches_the_official_code_value_and_gradient(lambda_offdiag, official_views):
    expected_value, expected_first, expected_second = OFFICIAL[lambda_offdiag]
    stacked = official_views
    dtype = gradient_dtype()
    loss = BarlowTwinsLoss(lambda_offdiag, dtype=dtype)
    got = as_numpy(loss(None, keras.ops.convert_to_tensor(stacked, dtype)))
    gradient = backend_gradient(lambda views: loss(None, views), stacked, dtype=dtype)
    tolerance = 1e-9 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(got, expected_value, rtol=tolerance)
    np.testing.assert_allclose(
        gradient, np.concatenate([expected_first, expected_second]), rtol=tolerance, atol=tolerance
    )


def test_compiled_value_and_gradient_match_the_reference_with_and_without_weights():
    first, second = random_views(1)
    weights = np.array([1.0, 2.0, 0.0, 0.5, 3.0], "float32")
    loss = BarlowTwinsLoss(lambda_offdiag=0.3)
    step = compiled(lambda views, w: loss(None, {"view1": views[0], "view2": views[1]}, w))
    stacked = np.stack([first, second])
    for sample_weight in (np.ones(5, "float32"), weights):
        np.testing.assert_allclose(
            as_numpy(step(stacked, sample_weight)),
            barlow_twins_reference(first, second, 0.3, sample_weight),
            rtol=1e-5,
        )
    assert_gradient_matches_central_differences(
        lambda views, dtype: BarlowTwinsLoss(0.3, dtype=dtype)(
            None, {"view1": views[0], "view2": views[1]}, weights
        ),
        lambda views: barlow_twins_reference(views[0], views[1], 0.3, weights),
        stacked,
        rtol=1e-6,
        atol=1e-9,
        float32_rtol=1e-3,
        float32_atol=1e-4,
        compiled=True,
    )


def test_eager_value_matches_the_reference_in_both_input_forms():
    first, second = random_views(2)
    loss = BarlowTwinsLoss()
    expected = barlow_twins_reference(first, second)
    np.testing.assert_allclose(value(loss, first, second), expected, rtol=1e-5)
    stacked = loss(None, np.concatenate([first, second]))
    np.testing.assert_allclose(as_numpy(stacked), expected, rtol=1e-5)


def test_whitened_identical_views_cost_nothing_and_opposite_ones_the_most():
    views = whitened(3)
    loss = BarlowTwinsLoss(lambda_offdiag=1.0)
    assert value(loss, views, views) < 1e-6
    # c = -I: (1 - (-1))^2 on each of the D = 3 diagonal entries.
    np.testing.assert_allclose(value(loss, views, -views), 12.0, rtol=1e-4)


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), log_scale=st.floats(0.0, 1.0))
def test_value_is_symmetric_and_ignores_batch_order_and_each_dimensions_scale_and_shift(
    seed, log_scale
):
    first, second = random_views(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(first))
    scales = (10.0**log_scale * rng.uniform(0.5, 2.0, size=3)).astype("float32")
    shifts = rng.normal(scale=5.0, size=3).astype("float32")
    loss = BarlowTwinsLoss(lambda_offdiag=0.1)
    base = value(loss, first, second)
    np.testing.assert_allclose(value(loss, second, first), base, rtol=1e-5)
    np.testing.assert_allclose(value(loss, first[order], second[order]), base, rtol=1e-5)
    # Batch normalisation removes a per-dimension affine map (up to its 1e-5).
    moved = value(loss, scales * first + shifts, second)
    np.testing.assert_allclose(moved, base, rtol=1e-3, atol=1e-4)


def test_half_precision_inputs_are_computed_in_float32():
    first, second = random_views(4)
    half = value(BarlowTwinsLoss(), first.astype("float16"), second.astype("float16"))
    expected = barlow_twins_reference(first.astype("float16"), second.astype("float16"))
    np.testing.assert_allclose(half, expected, rtol=1e-5)


def test_bad_inputs_raise():
    views = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match=r"BarlowTwinsLoss.*view1.*\(4, 3\).*\(3, 3\)"):
        BarlowTwinsLoss()(None, {"view1": views, "view2": views[:3]})
    with pytest.raises(ValueError, match=r"BarlowTwinsLoss.*keys"):
        BarlowTwinsLoss()(None, {"view1": views})
    with pytest.raises(ValueError, match=r"BarlowTwinsLoss.*\(2B, D\).*\(3,\)"):
        BarlowTwinsLoss()(None, views[0])
    with pytest.raises(ValueError, match=r"BarlowTwinsLoss.*at least 2 samples.*\(1, 3\)"):
        BarlowTwinsLoss()(None, views[:2])
    with pytest.raises(ValueError, match=r"BarlowTwinsLoss.*sample_weight.*\(4, 2\)"):
        BarlowTwinsLoss()(None, {"view1": views, "view2": views}, np.ones((4, 2), "float32"))
    with pytest.raises(ValueError, match="BarlowTwinsLoss.*lambda_offdiag"):
        BarlowTwinsLoss(lambda_offdiag=-0.1)

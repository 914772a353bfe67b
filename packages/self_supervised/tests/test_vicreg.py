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
from dl_techniques.losses.self_supervised import VICRegLoss

SCALE = 0.6  # some standard deviations below 1 (hinge active), one above

# The loss of the authors' code (facebookresearch/vicreg main_vicreg.py,
# VICReg.forward, one process), transcribed in torch 2.13.0 float64 and run
# offline as
#   x = (0.6 * torch.tensor(views[:5])).requires_grad_(True); y from views[5:]
# with views the `official_views` fixture (conftest.py)
#   v = vicreg(x, y, sim_coeff, std_coeff, cov_coeff); v.backward()
#   v.item(), x.grad.tolist(), y.grad.tolist()
OFFICIAL = {
    (25.0, 25.0, 1.0): (
        13.064916586469492,
        [
            [-0.5782733577528729, 1.1377564306174863, -2.1377215290017872],
            [-0.4347414355354231, -0.1433085450302776, 0.2928315530342678],
            [2.4615229210359466, -1.1957840835795324, 0.4497063744846532],
            [-3.061704075417243, 0.11714970821492465, 0.9047863890612328],
            [0.5131959476695921, 0.5641864897773988, 1.8503972124216332],
        ],
        [
            [1.3756748864, 1.996385163081382, -0.004884728404567218],
            [0.6344272504, -0.4629606469172597, -1.6651926127496814],
            [-1.5661804296000004, -1.1254609482281392, 0.9984357256438785],
            [1.4506639704000004, -0.9005506886434103, 0.5808583676385123],
            [-0.7945856775999999, 0.012587120707427235, -1.269216752128142],
        ],
    ),
    (2.0, 5.0, 0.5): (
        2.2814977130610665,
        [
            [0.04032365728942541, 0.2808182026434972, -0.21449421300035748],
            [-0.012671460867084622, -0.056638910286055485, -0.12324731419314641],
            [0.31488510524718927, -0.2214515545959064, 0.17731818109693068],
            [-0.43247631584344853, -0.028832181637015043, 0.17468252521224656],
            [0.001939014173918438, 0.06450444387547977, 0.09454082088432661],
        ],
        [
            [0.09983744319999999, 0.32867841131227643, -0.18869186150491343],
            [0.048413625200000004, -0.07132761712745195, -0.15101739065393632],
            [-0.1278902148, -0.2391674289896279, 0.1284553459847757],
            [0.12053198520000004, -0.11482294207268207, 0.08011547318370245],
            [-0.052892838799999994, 0.05823957687748544, 0.02233843299037161],
        ],
    ),
}


def vicreg_reference(first, second, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, weights=None):
    """VICReg (Bardes et al. 2022, eqs. 1-6) in float64, frequency weights on the samples."""
    first, second = np.asarray(first, "float64"), np.asarray(second, "float64")
    weights = np.ones(len(first)) if weights is None else np.asarray(weights, "float64")
    total = weights.sum()
    invariance = np.sum(weights * np.mean((first - second) ** 2, axis=1)) / total
    variance, covariance = 0.0, 0.0
    for view in (first, second):
        centred = view - np.sum(weights[:, None] * view, axis=0) / total
        matrix = (weights[:, None] * centred).T @ centred / (total - 1.0)
        variance += np.mean(np.maximum(0.0, 1.0 - np.sqrt(np.diag(matrix) + 1e-4))) / 2
        covariance += (np.sum(matrix**2) - np.sum(np.diag(matrix) ** 2)) / view.shape[1]
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance


def random_views(seed, batch=5, features=3, spread=0.8):
    rng = np.random.default_rng(seed)
    first = spread * rng.normal(size=(batch, features))
    second = first + 0.5 * rng.normal(size=(batch, features))
    return first.astype("float32"), second.astype("float32")


def value(loss, first, second, sample_weight=None):
    return float(as_numpy(loss(None, {"view1": first, "view2": second}, sample_weight)))


def test_hand_checked_value():
    same = [[1.0, 1.0], [-1.0, -1.0]]
    # No invariance cost; variances 2 (std above 1, no hinge); the covariance
    # 2 off the diagonal gives 2 * 2^2 / D = 4 per view.
    np.testing.assert_allclose(value(VICRegLoss(), same, same), 8.0, rtol=1e-6)
    # Moving view 2 by (1, 0) costs sim_coeff * mean((1, 0)^2) = 25 * 0.5.
    moved = [[2.0, 1.0], [0.0, -1.0]]
    np.testing.assert_allclose(value(VICRegLoss(), same, moved), 8.0 + 12.5, rtol=1e-6)


@pytest.mark.parametrize("coefficients", list(OFFICIAL))
def test_matches_the_official_code_value_and_gradient(coefficients, official_views):
    expected_value, expected_first, expected_second = OFFICIAL[coefficients]
    stacked = SCALE * official_views
    dtype = gradient_dtype()
    loss = VICRegLoss(*coefficients, dtype=dtype)
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
    loss = VICRegLoss(sim_coeff=2.0, std_coeff=3.0, cov_coeff=0.5)
    step = compiled(lambda views, w: loss(None, {"view1": views[0], "view2": views[1]}, w))
    stacked = np.stack([first, second])
    for sample_weight in (np.ones(5, "float32"), weights):
        np.testing.assert_allclose(
            as_numpy(step(stacked, sample_weight)),
            vicreg_reference(first, second, 2.0, 3.0, 0.5, sample_weight),
            rtol=1e-5,
        )
    assert_gradient_matches_central_differences(
        lambda views, dtype: VICRegLoss(2.0, 3.0, 0.5, dtype=dtype)(
            None, {"view1": views[0], "view2": views[1]}, weights
        ),
        lambda views: vicreg_reference(views[0], views[1], 2.0, 3.0, 0.5, weights),
        stacked,
        rtol=1e-6,
        atol=1e-9,
        float32_rtol=1e-3,
        float32_atol=1e-4,
        compiled=True,
    )


def test_eager_value_matches_the_reference_in_both_input_forms():
    first, second = random_views(2)
    loss = VICRegLoss()
    expected = vicreg_reference(first, second)
    np.testing.assert_allclose(value(loss, first, second), expected, rtol=1e-5)
    stacked = loss(None, np.concatenate([first, second]))
    np.testing.assert_allclose(as_numpy(stacked), expected, rtol=1e-5)


def test_identical_views_cost_no_invariance():
    first, _ = random_views(3)
    invariance_only = VICRegLoss(sim_coeff=1.0, std_coeff=0.0, cov_coeff=0.0)
    assert value(invariance_only, first, first) == 0.0
    _, second = random_views(3)
    np.testing.assert_allclose(
        value(invariance_only, first, second), np.mean((first - second) ** 2), rtol=1e-6
    )


def test_collapsed_batch_pays_the_full_variance_hinge_and_no_covariance():
    collapsed = np.tile(np.array([[0.3, -1.2, 2.0]], "float32"), (5, 1))
    # Zero variance: std sqrt(1e-4) = 0.01 on every dimension of both views.
    variance_only = VICRegLoss(sim_coeff=0.0, std_coeff=7.0, cov_coeff=0.0)
    np.testing.assert_allclose(value(variance_only, collapsed, collapsed), 7.0 * 0.99, rtol=1e-6)
    covariance_only = VICRegLoss(sim_coeff=0.0, std_coeff=0.0, cov_coeff=1.0)
    assert value(covariance_only, collapsed, collapsed) < 1e-12


def test_unbiased_variance_divides_by_the_batch_minus_one():
    # Two samples +-a: unbiased variance 2 a^2 (a biased one would be a^2),
    # so the standard deviation is exactly 1 at a^2 = (1 - 1e-4) / 2.
    at_one = np.sqrt((1.0 - 1e-4) / 2.0)
    views = np.array([[at_one, at_one], [-at_one, -at_one]], "float32")
    variance_only = VICRegLoss(sim_coeff=0.0, std_coeff=1.0, cov_coeff=0.0)
    assert value(variance_only, views, views) < 1e-6
    # Halved: unbiased variance 2 (a / 2)^2, under the hinge.
    expected = 1.0 - np.sqrt(2.0 * (at_one / 2.0) ** 2 + 1e-4)
    np.testing.assert_allclose(value(variance_only, views / 2.0, views / 2.0), expected, rtol=1e-5)


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_value_is_symmetric_in_the_views_and_ignores_the_order_of_the_batch(seed):
    first, second = random_views(seed)
    order = np.random.default_rng(seed).permutation(len(first))
    loss = VICRegLoss()
    base = value(loss, first, second)
    np.testing.assert_allclose(value(loss, second, first), base, rtol=1e-5)
    np.testing.assert_allclose(value(loss, first[order], second[order]), base, rtol=1e-5)


def test_half_precision_inputs_are_computed_in_float32():
    first, second = random_views(4)
    half = value(VICRegLoss(), first.astype("float16"), second.astype("float16"))
    expected = vicreg_reference(first.astype("float16"), second.astype("float16"))
    np.testing.assert_allclose(half, expected, rtol=1e-5)


def test_bad_inputs_raise():
    views = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match=r"VICRegLoss.*view1.*\(4, 3\).*\(4, 2\)"):
        VICRegLoss()(None, {"view1": views, "view2": views[:, :2]})
    with pytest.raises(ValueError, match=r"VICRegLoss.*keys"):
        VICRegLoss()(None, {"view1": views, "second": views})
    with pytest.raises(ValueError, match=r"VICRegLoss.*\(2B, D\).*\(3, 3\)"):
        VICRegLoss()(None, views[:3])
    with pytest.raises(ValueError, match=r"VICRegLoss.*at least 2 samples.*\(1, 3\)"):
        VICRegLoss()(None, {"view1": views[:1], "view2": views[:1]})
    with pytest.raises(ValueError, match=r"VICRegLoss.*sample_weight.*\(3,\).*\(4, 3\)"):
        VICRegLoss()(None, {"view1": views, "view2": views}, np.ones(3, "float32"))
    for argument in ("sim_coeff", "std_coeff", "cov_coeff"):
        with pytest.raises(ValueError, match=f"VICRegLoss.*{argument}"):
            VICRegLoss(**{argument: -1.0})

import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    gradient_dtype,
    hypothesis_examples,
)
from dl_techniques.losses.forecasting import (
    GaussianNLL,
    NegativeBinomialNLL,
    PoissonNLL,
    StudentTNLL,
)

lgamma = np.vectorize(math.lgamma, otypes=[np.float64])

# Fixed inputs of the torch.distributions literals below: y (2, 3), counts
# (2, 3) and raw head outputs (2, 3) per parameter.
TARGETS = np.array([[0.0, 1.5, -2.0], [3.0, 0.25, 1.0]])
COUNTS = np.array([[0.0, 1.0, 4.0], [7.0, 0.0, 2.0]])
MU = np.array([[0.0, 1.0, -1.5], [2.0, 0.5, 1.0]])
RAW_SIGMA = np.array([[0.0, -1.0, 0.5], [1.5, -0.3, 2.0]])
RAW_NU = np.array([[-3.0, 0.0, 2.0], [1.0, 4.0, -1.0]])
RAW_RATE = np.array([[-2.0, 0.0, 1.5], [2.0, -1.0, 0.3]])
RAW_ALPHA = np.array([[-1.0, 0.5, -4.0], [0.0, 2.0, -2.0]])

# Per-sample means of -log_prob, computed offline in float64 with torch 2.13.0
# (torch.set_default_dtype(torch.float64); pos(r) = F.softplus(r) + 1e-6):
#   -Normal(MU, pos(RAW_SIGMA)).log_prob(TARGETS).mean(1)
#   -StudentT(2 + F.softplus(RAW_NU), MU, pos(RAW_SIGMA)).log_prob(TARGETS).mean(1)
#   -Poisson(pos(RAW_RATE)).log_prob(COUNTS).mean(1)
#   -NegativeBinomial(total_count=1 / a, probs=m / (m + 1 / a)).log_prob(COUNTS).mean(1)
#     with m = pos(RAW_RATE), a = pos(RAW_ALPHA)
TORCH_GAUSSIAN = [0.8696144581903086, 1.2424727595809248]
TORCH_STUDENT_T = [0.9534610374015392, 1.334837823881785]
TORCH_POISSON = [1.3134058147046397, 2.514972136430632]
TORCH_NEGATIVE_BINOMIAL = [1.4264767765593038, 2.0168734436839855]


def positive(raw):
    return np.logaddexp(0.0, np.asarray(raw, "float64")) + 1e-6


def per_sample_mean(values):
    return values.reshape(values.shape[0], -1).mean(axis=1)


def gaussian_reference(y, mu, raw_sigma):
    """Per-sample -log N(y; mu, sigma) from the density, in float64."""
    sigma = positive(raw_sigma)
    density = np.exp(-0.5 * ((y - mu) / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
    return per_sample_mean(-np.log(density))


def student_t_reference(y, mu, raw_sigma, raw_nu):
    """Per-sample -log t_nu(y; mu, sigma) from the density, in float64."""
    sigma, nu = positive(raw_sigma), 2.0 + np.logaddexp(0.0, raw_nu)
    log_norm = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * np.log(nu * math.pi) - np.log(sigma)
    log_density = log_norm - (nu + 1) / 2 * np.log(1.0 + ((y - mu) / sigma) ** 2 / nu)
    return per_sample_mean(-log_density)


def poisson_reference(counts, raw_rate):
    """Per-sample -log(rate^k e^-rate / k!), in float64."""
    rate = positive(raw_rate)
    return per_sample_mean(-(counts * np.log(rate) - rate - lgamma(counts + 1.0)))


def negative_binomial_reference(counts, raw_mu, raw_alpha):
    """Per-sample -log NB(k) with Gamma(k + r) / (Gamma(r) k!) p^k (1 - p)^r, p = mu / (mu + r)."""
    mu, r = positive(raw_mu), 1.0 / positive(raw_alpha)
    p = mu / (mu + r)
    log_pmf = (
        lgamma(counts + r) - lgamma(r) - lgamma(counts + 1.0)
        + counts * np.log(p) + r * np.log1p(-p)
    )  # fmt: skip
    return per_sample_mean(-log_pmf)


def head(*parameters):
    return np.stack(parameters, axis=-1).astype("float32")


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return as_numpy(loss(y_true.astype("float32"), y_pred))


CASES = {
    "gaussian": (GaussianNLL, TARGETS, (MU, RAW_SIGMA), gaussian_reference, TORCH_GAUSSIAN),
    "student_t": (
        StudentTNLL,
        TARGETS,
        (MU, RAW_SIGMA, RAW_NU),
        student_t_reference,
        TORCH_STUDENT_T,
    ),
    "poisson": (PoissonNLL, COUNTS, (RAW_RATE,), poisson_reference, TORCH_POISSON),
    "negative_binomial": (
        NegativeBinomialNLL,
        COUNTS,
        (RAW_RATE, RAW_ALPHA),
        negative_binomial_reference,
        TORCH_NEGATIVE_BINOMIAL,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_distributions_log_prob(case):
    loss_class, y_true, parameters, _, torch_values = CASES[case]
    dtype = gradient_dtype()
    loss = loss_class(reduction=None, dtype=dtype)
    value = as_numpy(
        loss(
            keras.ops.convert_to_tensor(y_true, dtype=dtype),
            keras.ops.convert_to_tensor(np.stack(parameters, axis=-1), dtype=dtype),
        )
    )
    tolerance = 1e-7 if dtype == "float64" else 3e-6
    np.testing.assert_allclose(value, torch_values, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_numpy_density_on_random_inputs(case):
    loss_class, y_true, parameters, reference, _ = CASES[case]
    rng = np.random.default_rng(len(case))
    shape = (4, 5, 2)
    if loss_class in (PoissonNLL, NegativeBinomialNLL):
        y_true = rng.poisson(3.0, size=shape).astype("float64")
    else:
        y_true = rng.normal(scale=2.0, size=shape)
    raw = [rng.normal(scale=1.5, size=shape) for _ in parameters]
    expected = reference(y_true, *(p.astype("float32").astype("float64") for p in raw))
    value = per_sample(loss_class(), y_true, head(*raw))
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_central_differences_and_is_finite_at_zero(case):
    # The count targets hold zeros, where y log(rate) must give a finite gradient.
    loss_class, y_true, parameters, reference, _ = CASES[case]
    y_pred = np.stack(parameters, axis=-1)
    gradient = assert_gradient_matches_central_differences(
        lambda raw, dtype: loss_class(reduction="sum", dtype=dtype)(y_true, raw),
        lambda raw: reference(y_true, *np.moveaxis(raw, -1, 0)).sum(),
        y_pred,
        rtol=1e-6,
        atol=1e-8,
        float32_rtol=1e-3,
        float32_atol=1e-4,
    )
    assert np.all(np.isfinite(gradient))


def test_hand_checked_gaussian_at_unit_scale():
    # sigma = softplus(0.5413233) + 1e-6 = 1, error 1: 0.5 log(2 pi) + 0.5
    value = GaussianNLL()([[2.0]], [[[1.0, 0.5413233]]])
    np.testing.assert_allclose(as_numpy(value), 0.5 * math.log(2 * math.pi) + 0.5, rtol=1e-6)


def test_hand_checked_poisson_keeps_log_factorial():
    # rate 1, y = 3: 1 - 3 log 1 + log 3! = 1 + log 6; keras.losses.Poisson drops log 6.
    value = PoissonNLL()([[3.0]], [[[0.5413233]]])
    np.testing.assert_allclose(as_numpy(value), 1.0 + math.log(6.0), rtol=1e-6)


def test_hand_checked_negative_binomial_is_geometric_at_unit_dispersion():
    # alpha = 1 (r = 1), mu = 1: P(y) = 2^-(y + 1), so -log P(2) = 3 log 2.
    value = NegativeBinomialNLL()([[2.0]], [[[0.5413233, 0.5413233]]])
    np.testing.assert_allclose(as_numpy(value), 3.0 * math.log(2.0), rtol=1e-6)


@pytest.mark.parametrize(
    ("loss_class", "parameters"),
    [(PoissonNLL, (1.2,)), (NegativeBinomialNLL, (1.2, -0.7))],
    ids=["poisson", "negative_binomial"],
)
def test_count_likelihoods_sum_to_one_with_their_mean_and_variance(loss_class, parameters):
    counts = np.arange(0.0, 200.0)[:, None]
    y_pred = np.tile(np.array(parameters, "float32"), (len(counts), 1, 1))
    probabilities = np.exp(-per_sample(loss_class(), counts, y_pred))
    mu = positive(parameters[0])
    alpha = positive(parameters[1]) if len(parameters) > 1 else 0.0
    mean = np.sum(counts[:, 0] * probabilities)
    variance = np.sum((counts[:, 0] - mean) ** 2 * probabilities)
    np.testing.assert_allclose(np.sum(probabilities), 1.0, rtol=1e-4)
    np.testing.assert_allclose(mean, mu, rtol=1e-4)
    np.testing.assert_allclose(variance, mu + alpha * mu**2, rtol=1e-3)


def test_negative_binomial_tends_to_poisson_as_dispersion_vanishes():
    counts = np.array([[0.0, 2.0, 5.0]])
    raw_mu = np.array([[0.3, 1.0, 1.8]])
    poisson = per_sample(PoissonNLL(), counts, head(raw_mu))
    # alpha = softplus(-9) + 1e-6 = 1.3e-4
    nearly_poisson = per_sample(
        NegativeBinomialNLL(), counts, head(raw_mu, np.full_like(raw_mu, -9.0))
    )
    np.testing.assert_allclose(nearly_poisson, poisson, atol=2e-3)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    shift=st.floats(-100.0, 100.0),
    log_scale=st.floats(-3.0, 3.0),
)
def test_location_scale_heads_are_equivariant(seed, shift, log_scale):
    # Moving y and mu by c keeps the NLL; scaling y, mu and sigma by k adds log k.
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(3, 4))
    mu = y + rng.normal(size=(3, 4))
    sigma = rng.uniform(0.2, 3.0, size=(3, 4))
    nu_raw = rng.normal(size=(3, 4))
    for loss_class, extra in [(GaussianNLL, ()), (StudentTNLL, (nu_raw,))]:

        def value(y, mu, sigma, loss_class=loss_class, extra=extra):
            raw_sigma = np.log(np.expm1(sigma - 1e-6))
            return per_sample(loss_class(), y, head(mu, raw_sigma, *extra))

        base = value(y, mu, sigma)
        np.testing.assert_allclose(value(y + shift, mu + shift, sigma), base, atol=2e-3)
        scale = math.exp(log_scale)
        scaled = value(scale * y, scale * mu, scale * sigma)
        np.testing.assert_allclose(scaled, base + log_scale, rtol=1e-3, atol=2e-3)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_student_t_approaches_gaussian_for_many_degrees_of_freedom(seed):
    rng = np.random.default_rng(seed)
    mu, raw_sigma = rng.normal(size=(2, 3)), rng.uniform(0.0, 2.0, size=(2, 3))
    y = mu + positive(raw_sigma) * np.clip(rng.normal(size=(2, 3)), -3.0, 3.0)
    gaussian = per_sample(GaussianNLL(), y, head(mu, raw_sigma))
    # nu = 2 + softplus(1e4) = 10002: the t density differs by O(z**4 / nu) <= 0.002 for |z| <= 3.
    student = per_sample(StudentTNLL(), y, head(mu, raw_sigma, np.full_like(mu, 1e4)))
    np.testing.assert_allclose(student, gaussian, atol=3e-3)


@pytest.mark.parametrize("loss_class", [PoissonNLL, NegativeBinomialNLL])
def test_negative_counts_are_a_value_error(loss_class):
    y_pred = np.zeros((2, 3, len(loss_class.parameter_names)), "float32")
    with pytest.raises(ValueError, match=rf"{loss_class.__name__}.*y_true.*\[0\.0, inf\]"):
        loss_class()(np.array([[1.0, -1.0, 0.0], [0.0, 2.0, 3.0]]), y_pred)


@pytest.mark.parametrize("case", sorted(CASES))
def test_parameter_axis_of_wrong_length_is_a_value_error(case):
    loss_class = CASES[case][0]
    wrong = len(loss_class.parameter_names) + 1
    pattern = rf"{loss_class.__name__}.*y_pred.*\(2, 3, {wrong}\)"
    with pytest.raises(ValueError, match=pattern):
        loss_class()(np.zeros((2, 3)), np.zeros((2, 3, wrong)))


def test_mismatched_y_true_is_a_value_error():
    with pytest.raises(ValueError, match=r"GaussianNLL.*y_true.*" + re.escape("(2, 4)")):
        GaussianNLL()(np.zeros((2, 4)), np.zeros((2, 3, 2)))


def test_trailing_unit_target_axis_equals_plain_target():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(3, 4)).astype("float32")
    y_pred = rng.normal(size=(3, 4, 2)).astype("float32")
    np.testing.assert_allclose(
        per_sample(GaussianNLL(), y[..., None], y_pred), per_sample(GaussianNLL(), y, y_pred)
    )

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.generative.hinge_gan_loss import HingeGANLoss
from dl_techniques.losses.generative.non_saturating_gan_loss import NonSaturatingGANLoss
from dl_techniques.losses.generative.r1_penalty import r1_penalty

GAN_LOSSES = (HingeGANLoss, NonSaturatingGANLoss)


def softplus(values):
    return np.logaddexp(0.0, values)


REAL_TERMS = {
    "HingeGANLoss": lambda d: np.maximum(1.0 - d, 0.0),
    "NonSaturatingGANLoss": lambda d: softplus(-d),
}
FAKE_TERMS = {
    "HingeGANLoss": lambda d: np.maximum(1.0 + d, 0.0),
    "NonSaturatingGANLoss": softplus,
}
GENERATOR_TERMS = {
    "HingeGANLoss": lambda d: -d,
    "NonSaturatingGANLoss": lambda d: softplus(-d),
}


def critic_reference(name, labels, scores, weights=None):
    """The critic loss of the paper's formula, each group mean over its own samples."""
    labels = np.asarray(labels, "float64").reshape(-1)
    scores = np.asarray(scores, "float64").reshape(-1)
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, "float64")
    real, fake = labels == 1, labels <= 0
    real_mean = np.sum(weights[real] * REAL_TERMS[name](scores[real])) / np.sum(weights[real])
    fake_mean = np.sum(weights[fake] * FAKE_TERMS[name](scores[fake])) / np.sum(weights[fake])
    return real_mean + fake_mean


@pytest.mark.parametrize("loss_class", GAN_LOSSES)
def test_critic_and_generator_match_the_numpy_reference_with_weights(loss_class):
    rng = np.random.default_rng(3)
    labels = np.array([1, 0, -1, 1, 0, 1, 0], "float32")
    scores = rng.normal(scale=2.0, size=(7, 1)).astype("float32")
    weights = rng.uniform(0.1, 3.0, size=7).astype("float32")
    name = loss_class.__name__
    np.testing.assert_allclose(
        as_numpy(loss_class()(labels, scores, sample_weight=weights)),
        critic_reference(name, labels, scores, weights),
        rtol=1e-5,
    )
    generator = loss_class(for_critic=False)(np.zeros(7, "float32"), scores)
    np.testing.assert_allclose(
        as_numpy(generator), np.mean(GENERATOR_TERMS[name](scores.astype("float64"))), rtol=1e-5
    )


@pytest.mark.parametrize("loss_class", GAN_LOSSES)
def test_critic_gradient_matches_finite_differences(loss_class):
    rng = np.random.default_rng(4)
    labels = np.array([1, 0, 0, 1, 0], "float32")
    scores = rng.normal(scale=2.0, size=5)
    name = loss_class.__name__
    assert_gradient_matches_central_differences(
        lambda values, dtype: loss_class()(labels, values),
        lambda values: critic_reference(name, labels, values),
        scores,
        rtol=1e-4,
        atol=1e-6,
        dtype="float32",
    )


def test_hinge_hand_checked_values():
    # real scores 0.5 and 2: (0.5 + 0) / 2; fake score -0.5: 0.5
    value = HingeGANLoss()([1.0, 1.0, 0.0], [[0.5], [2.0], [-0.5]])
    np.testing.assert_allclose(as_numpy(value), 0.75, rtol=1e-6)
    generator = HingeGANLoss(for_critic=False, reduction=None)([0.0, 0.0], [[1.0], [3.0]])
    np.testing.assert_allclose(as_numpy(generator), [-1.0, -3.0], rtol=1e-6)


def test_non_saturating_is_binary_cross_entropy_on_logits():
    rng = np.random.default_rng(5)
    labels = np.array([1, 1, 0, 0], "float32")
    logits = rng.normal(scale=3.0, size=(4, 1)).astype("float32")
    # Two real and two fake samples: the group means equal twice the plain BCE mean.
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)(labels[:, None], logits)
    np.testing.assert_allclose(
        as_numpy(NonSaturatingGANLoss()(labels, logits)), 2 * as_numpy(cross_entropy), rtol=1e-5
    )


@pytest.mark.parametrize("loss_class", GAN_LOSSES)
def test_extreme_logits_stay_finite(loss_class):
    scores = keras.ops.convert_to_tensor(np.array([-1e4, 1e4, 1e4, -1e4], "float32"))
    labels = np.array([1, 0, 1, 0], "float32")
    for loss in (loss_class(), loss_class(for_critic=False)):
        value = as_numpy(loss(labels, scores))
        gradient = as_numpy(input_gradient(lambda values, loss=loss: loss(labels, values), scores))
        assert np.isfinite(value) and np.all(np.isfinite(gradient))


@pytest.mark.parametrize("loss_class", GAN_LOSSES)
def test_nan_score_gives_nan(loss_class):
    assert np.isnan(as_numpy(loss_class()([1.0, 0.0], [[1.0], [np.nan]])))


@pytest.mark.parametrize("loss_class", GAN_LOSSES)
def test_bad_labels_shapes_and_for_critic_raise(loss_class):
    name = loss_class.__name__
    with pytest.raises(ValueError, match=rf"{name}.*y_true"):
        loss_class()([1.0, 0.5, 0.0], [[1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match=rf"{name}.*\(3,\).*\(4, 1\)"):
        loss_class()([1.0, 0.0, 1.0], np.zeros((4, 1), "float32"))
    with pytest.raises(ValueError, match=rf"{name}.*for_critic"):
        loss_class(for_critic="yes")


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), real_count=st.integers(1, 7))
def test_hinge_critic_is_zero_outside_the_margin(seed, real_count):
    rng = np.random.default_rng(seed)
    labels = np.array([1.0] * real_count + [0.0] * (8 - real_count), "float32")
    margins = rng.uniform(0.0, 5.0, size=8).astype("float32")
    scores = np.where(labels == 1, 1.0 + margins, -1.0 - margins)
    assert as_numpy(HingeGANLoss()(labels, scores)) == 0.0


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), real_count=st.integers(1, 7))
def test_non_saturating_critic_is_symmetric_in_labels_and_logit_sign(seed, real_count):
    rng = np.random.default_rng(seed)
    labels = np.array([1.0] * real_count + [0.0] * (8 - real_count), "float32")
    logits = rng.normal(scale=3.0, size=8).astype("float32")
    loss = NonSaturatingGANLoss()
    np.testing.assert_allclose(
        as_numpy(loss(1.0 - labels, -logits)), as_numpy(loss(labels, logits)), rtol=1e-5
    )


def linear_critic(weights):
    """A Keras critic ``x -> sum(w * x) - 0.2`` over all non-batch axes."""
    critic = keras.Sequential(
        [keras.Input(weights.shape), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    critic.set_weights([weights.reshape(-1, 1), np.array([-0.2], "float32")])
    return critic


@pytest.mark.parametrize("sample_shape", [(5,), (3, 4), (2, 3, 2)])
def test_r1_of_a_linear_critic_is_half_gamma_times_the_squared_weight_norm(sample_shape):
    rng = np.random.default_rng(len(sample_shape))
    weights = rng.normal(size=sample_shape).astype("float32")
    real = rng.normal(size=(4, *sample_shape)).astype("float32")
    penalty = r1_penalty(linear_critic(weights), real, gamma=3.0)
    expected = 1.5 * np.sum(weights.astype("float64") ** 2)
    np.testing.assert_allclose(as_numpy(penalty), expected, rtol=1e-5)


def tanh_scores_numpy(samples, hidden, output):
    return (np.tanh(samples @ hidden) @ output)[:, 0]


def r1_by_finite_differences(samples, hidden, output, gamma):
    gradients = central_differences(lambda x: tanh_scores_numpy(x, hidden, output), samples)
    return 0.5 * gamma * np.mean(np.sum(gradients**2, axis=1))


def test_r1_of_a_nonlinear_critic_and_its_weight_gradient_match_finite_differences():
    rng = np.random.default_rng(7)
    hidden = rng.normal(size=(3, 4)).astype("float32")
    output = rng.normal(size=(4, 1)).astype("float32")
    samples = rng.normal(scale=0.5, size=(5, 3)).astype("float32")

    def penalty_of_output(weights):
        def critic(x):
            return keras.ops.matmul(keras.ops.tanh(keras.ops.matmul(x, hidden)), weights)

        return r1_penalty(critic, samples, gamma=2.0)

    output_tensor = keras.ops.convert_to_tensor(output)
    samples64, hidden64 = samples.astype("float64"), hidden.astype("float64")
    np.testing.assert_allclose(
        as_numpy(penalty_of_output(output_tensor)),
        r1_by_finite_differences(samples64, hidden64, output, 2.0),
        rtol=1e-4,
    )
    # Double backprop: gamma / 2 * mean |J^T v|^2 is quadratic in v, with
    # gradient gamma * mean_i J_i J_i^T v, J_i = hidden * (1 - tanh^2)_i.
    slopes = 1.0 - np.tanh(samples64 @ hidden64) ** 2
    jacobians = hidden64[None] * slopes[:, None, :]
    expected = 2.0 * np.mean(np.einsum("bdk,bdj->bkj", jacobians, jacobians), axis=0) @ output
    gradient = input_gradient(penalty_of_output, output_tensor)
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-4, atol=1e-6)


def test_r1_is_zero_for_a_constant_critic_and_validates_its_arguments():
    samples = np.ones((3, 2), "float32")
    np.testing.assert_allclose(as_numpy(r1_penalty(lambda x: 0.0 * x[:, :1] + 1.0, samples)), 0.0)
    for gamma in (-1.0, float("nan"), True, "10"):
        with pytest.raises(ValueError, match="r1_penalty.*gamma"):
            r1_penalty(lambda x: x, samples, gamma=gamma)
    with pytest.raises(ValueError, match=r"r1_penalty.*real.*\(\)"):
        r1_penalty(lambda x: x, np.float32(1.0))

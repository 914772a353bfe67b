import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import as_numpy, hypothesis_examples
from dl_techniques.losses.generative.wasserstein_gradient_penalty_loss import (
    WassersteinGradientPenaltyLoss,
    create_wgan_gp_losses,
)
from dl_techniques.losses.generative.wasserstein_loss import WassersteinLoss


def critic_reference(labels, scores, weights=None):
    """``mean_fake D - mean_real D`` from the WGAN critic objective, in float64."""
    labels = np.asarray(labels, "float64").reshape(-1)
    scores = np.asarray(scores, "float64").reshape(-1)
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, "float64")
    real, fake = labels == 1, labels <= 0
    mean_real = np.sum(weights[real] * scores[real]) / np.sum(weights[real])
    mean_fake = np.sum(weights[fake] * scores[fake]) / np.sum(weights[fake])
    return mean_fake - mean_real


def penalty_reference(gradients, lambda_gp):
    gradients = np.asarray(gradients, "float64").reshape(len(gradients), -1)
    norms = np.sqrt(np.sum(gradients**2, axis=1) + 1e-12)
    return lambda_gp * np.mean((norms - 1.0) ** 2)


def test_hand_checked_critic_value():
    # mean real (2 + 4) / 2 = 3, mean fake 1 -> 1 - 3 = -2
    value = WassersteinLoss()([1.0, 1.0, 0.0], [[2.0], [4.0], [1.0]])
    np.testing.assert_allclose(as_numpy(value), -2.0, rtol=1e-6)


def test_plus_minus_one_labels_give_the_same_critic_value():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 1)).astype("float32")
    zero_one = np.array([1, 0, 0, 1, 1, 0, 1], "float32")
    loss = WassersteinLoss()
    np.testing.assert_allclose(
        as_numpy(loss(2.0 * zero_one - 1.0, scores)), as_numpy(loss(zero_one, scores)), rtol=1e-6
    )


def test_unbalanced_batch_averages_each_group_separately():
    # 1 real (score 4) and 3 fakes (0, 0, 3): group means give 1 - 4 = -3; a
    # plain mean of the signed scores would give (0 + 0 + 3 - 4) / 4 = -0.25.
    value = WassersteinLoss()([1.0, 0.0, 0.0, 0.0], [4.0, 0.0, 0.0, 3.0])
    np.testing.assert_allclose(as_numpy(value), -3.0, rtol=1e-6)


@pytest.mark.parametrize("real_count", [1, 4, 9])
def test_critic_matches_numpy_reference_on_random_unbalanced_batches(real_count):
    rng = np.random.default_rng(real_count)
    labels = np.zeros(10, "float32")
    labels[rng.choice(10, size=real_count, replace=False)] = 1.0
    scores = rng.normal(scale=3.0, size=(10, 1)).astype("float32")
    np.testing.assert_allclose(
        as_numpy(WassersteinLoss()(labels, scores)), critic_reference(labels, scores), rtol=1e-5
    )


def test_critic_sample_weight_acts_inside_the_group_means():
    rng = np.random.default_rng(1)
    labels = np.array([1, 1, 0, 0, 0], "float32")
    scores = rng.normal(size=5).astype("float32")
    weights = np.array([2.0, 0.5, 1.0, 3.0, 0.0], "float32")
    np.testing.assert_allclose(
        as_numpy(WassersteinLoss()(labels, scores, sample_weight=weights)),
        critic_reference(labels, scores, weights),
        rtol=1e-5,
    )


def test_critic_gradient_is_minus_one_over_real_count_and_one_over_fake_count():
    labels = np.array([1, 0, 0, 1, 0], "float32")
    scores = keras.ops.convert_to_tensor(np.arange(5, dtype="float32"))
    gradient = as_numpy(input_gradient(lambda values: WassersteinLoss()(labels, values), scores))
    np.testing.assert_allclose(gradient, [-1 / 2, 1 / 3, 1 / 3, -1 / 2, 1 / 3], rtol=1e-6)


def test_group_without_samples_contributes_zero_with_finite_gradient():
    scores = keras.ops.convert_to_tensor(np.array([1.0, 3.0], "float32"))
    loss = WassersteinLoss()
    np.testing.assert_allclose(as_numpy(loss([1.0, 1.0], scores)), -2.0, rtol=1e-6)
    gradient = as_numpy(input_gradient(lambda values: loss([0.0, 0.0], values), scores))
    np.testing.assert_allclose(gradient, [0.5, 0.5], rtol=1e-6)


def test_generator_loss_is_minus_the_mean_score_and_ignores_labels():
    scores = np.array([[1.0], [3.0], [-1.0]], "float32")
    loss = WassersteinLoss(for_critic=False)
    np.testing.assert_allclose(as_numpy(loss([0.0, 0.0, 0.0], scores)), -1.0, rtol=1e-6)
    np.testing.assert_allclose(as_numpy(loss([1.0, 0.0, 5.0], scores)), -1.0, rtol=1e-6)
    per_sample = WassersteinLoss(for_critic=False, reduction=None)([0.0, 0.0, 0.0], scores)
    np.testing.assert_allclose(as_numpy(per_sample), [-1.0, -3.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("bad_labels", [[1.0, 2.0, 0.0], [1.0, 0.5, 0.0], [0.0, -2.0, 1.0]])
def test_labels_outside_one_zero_minus_one_raise(bad_labels):
    with pytest.raises(ValueError, match=r"WassersteinLoss.*y_true.*\(3,\)"):
        WassersteinLoss()(bad_labels, [[1.0], [2.0], [3.0]])
    y_pred = {"scores": [[1.0], [2.0], [3.0]], "interpolate_gradients": [[1.0], [1.0], [1.0]]}
    with pytest.raises(ValueError, match="WassersteinGradientPenaltyLoss.*y_true"):
        WassersteinGradientPenaltyLoss()(bad_labels, y_pred)


def test_mismatched_label_and_score_shapes_raise():
    with pytest.raises(ValueError, match=r"WassersteinLoss.*\(3,\).*\(4, 1\)"):
        WassersteinLoss()([1.0, 0.0, 1.0], np.zeros((4, 1), "float32"))
    with pytest.raises(ValueError, match=r"WassersteinLoss.*y_pred.*\(4, 2\)"):
        WassersteinLoss()([1.0, 0.0, 1.0, 0.0], np.zeros((4, 2), "float32"))


def test_for_critic_must_be_bool():
    with pytest.raises(ValueError, match="WassersteinLoss.*for_critic"):
        WassersteinLoss(for_critic="yes")


def test_gradient_penalty_loss_adds_the_penalty_to_the_critic_term():
    # critic term 1 - 3 = -2; gradient norms 1 and 2 -> 10 * (0 + 1) / 2 = 5
    y_pred = {"scores": [[3.0], [1.0]], "interpolate_gradients": [[0.6, 0.8], [0.0, 2.0]]}
    value = WassersteinGradientPenaltyLoss(lambda_gp=10.0)([1.0, 0.0], y_pred)
    np.testing.assert_allclose(as_numpy(value), 3.0, rtol=1e-6)


@pytest.mark.parametrize("gradient_shape", [(6, 5), (6, 3, 2), (6, 2, 2, 3)])
def test_gradient_penalty_loss_matches_reference_for_any_gradient_rank(gradient_shape):
    rng = np.random.default_rng(len(gradient_shape))
    labels = np.array([1, -1, -1, 1, -1, -1], "float32")
    scores = rng.normal(size=(6, 1)).astype("float32")
    gradients = rng.normal(size=gradient_shape).astype("float32")
    value = WassersteinGradientPenaltyLoss(lambda_gp=2.5)(
        labels, {"scores": scores, "interpolate_gradients": gradients}
    )
    expected = critic_reference(labels, scores) + penalty_reference(gradients, 2.5)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-5)


def test_gradient_penalty_loss_on_plain_scores_is_the_critic_term():
    # Form (b): mean fake (1 + 0) / 2 = 0.5, mean real 2 -> 0.5 - 2 = -1.5;
    # the caller adds compute_gradient_penalty.
    value = WassersteinGradientPenaltyLoss()([1.0, 0.0, 0.0], np.array([[2.0], [1.0], [0.0]]))
    np.testing.assert_allclose(as_numpy(value), -1.5, rtol=1e-6)


def test_gradient_penalty_loss_on_plain_scores_weights_inside_the_group_means():
    rng = np.random.default_rng(5)
    labels = np.array([1, 0, 1, 0, 0], "float32")
    scores = rng.normal(size=(5, 1)).astype("float32")
    weights = np.array([0.5, 2.0, 1.5, 0.0, 1.0], "float32")
    value = WassersteinGradientPenaltyLoss()(labels, scores, sample_weight=weights)
    expected = critic_reference(labels, scores, weights)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-5)


def test_gradient_penalty_loss_rejects_sample_weight_and_bad_keys():
    y_pred = {"scores": [[1.0], [2.0]], "interpolate_gradients": [[1.0], [2.0]]}
    with pytest.raises(ValueError, match="WassersteinGradientPenaltyLoss.*sample_weight"):
        WassersteinGradientPenaltyLoss()([1.0, 0.0], y_pred, sample_weight=[1.0, 1.0])
    with pytest.raises(ValueError, match="WassersteinGradientPenaltyLoss.*keys"):
        WassersteinGradientPenaltyLoss()([1.0, 0.0], {"scores": [[1.0], [2.0]]})


@pytest.mark.parametrize("lambda_gp", [-0.1, float("inf"), "10", None])
def test_invalid_lambda_gp_raises(lambda_gp):
    with pytest.raises(ValueError, match="WassersteinGradientPenaltyLoss.*lambda_gp"):
        WassersteinGradientPenaltyLoss(lambda_gp=lambda_gp)


def test_factory_returns_penalised_critic_loss_and_generator_loss():
    critic_loss, generator_loss = create_wgan_gp_losses(lambda_gp=3.0)
    assert isinstance(critic_loss, WassersteinGradientPenaltyLoss)
    assert critic_loss.lambda_gp == 3.0
    assert isinstance(generator_loss, WassersteinLoss) and not generator_loss.for_critic


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    shift=st.floats(-100.0, 100.0),
    real_count=st.integers(1, 7),
)
def test_critic_value_is_unchanged_by_a_constant_score_shift(seed, shift, real_count):
    rng = np.random.default_rng(seed)
    labels = np.array([1.0] * real_count + [0.0] * (8 - real_count), "float32")
    scores = rng.normal(size=8).astype("float32")
    loss = WassersteinLoss()
    np.testing.assert_allclose(
        as_numpy(loss(labels, scores + np.float32(shift))),
        as_numpy(loss(labels, scores)),
        atol=1e-4 * (1 + abs(shift)),
    )


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), real_count=st.integers(1, 7))
def test_swapping_real_and_fake_negates_the_critic_value(seed, real_count):
    rng = np.random.default_rng(seed)
    labels = np.array([1.0] * real_count + [0.0] * (8 - real_count), "float32")
    scores = rng.normal(size=8).astype("float32")
    loss = WassersteinLoss()
    np.testing.assert_allclose(
        as_numpy(loss(1.0 - labels, scores)), -as_numpy(loss(labels, scores)), atol=1e-5
    )


@pytest.mark.parametrize("loss_class", [WassersteinLoss, WassersteinGradientPenaltyLoss])
def test_labels_are_read_on_the_first_eager_call_unless_always(loss_class, monkeypatch):
    monkeypatch.delenv("DL_LOSSES_VALIDATE", raising=False)
    scores = np.array([[2.0], [4.0], [1.0]], "float32")
    loss = loss_class()
    np.testing.assert_allclose(as_numpy(loss([1.0, 1.0, 0.0], scores)), -2.0, rtol=1e-6)
    # Checked once: label 2 is not read again and counts as real (> 0.5).
    np.testing.assert_allclose(as_numpy(loss([1.0, 2.0, 0.0], scores)), -2.0, rtol=1e-6)
    monkeypatch.setenv("DL_LOSSES_VALIDATE", "always")
    with pytest.raises(ValueError, match=rf"{loss_class.__name__}.*y_true.*\[2\.0\]"):
        loss([1.0, 2.0, 0.0], scores)


def test_nan_score_or_gradient_gives_nan_in_both_forms():
    loss = WassersteinGradientPenaltyLoss()
    nan_scores = np.array([[1.0], [np.nan]], "float32")
    assert np.isnan(as_numpy(loss([1.0, 0.0], nan_scores)))
    nan_gradients = np.array([[0.6, 0.8], [np.nan, 0.0]], "float32")
    y_pred = {"scores": [[3.0], [1.0]], "interpolate_gradients": nan_gradients}
    assert np.isnan(as_numpy(loss([1.0, 0.0], y_pred)))

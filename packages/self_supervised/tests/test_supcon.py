import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    backend_gradient,
    central_differences,
    compiled,
    hypothesis_examples,
    log_softmax,
)
from dl_techniques.losses.self_supervised.supcon_loss import SupConLoss


@pytest.fixture(autouse=True)
def _first_call_rule(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)


def supcon_reference(labels, embeddings, temperature, base_temperature):
    """SupCon L_out (Khosla et al. 2020, eq. 2) per sample, from the full (BV, BV) matrix.

    Returns the per-sample values the loss documents: each anchor's L_i times
    B V / |A| (0 without a positive), averaged over the sample's views.
    """
    embeddings = np.asarray(embeddings, "float64")
    if embeddings.ndim == 2:
        embeddings = embeddings[:, None]
    samples, views, _ = embeddings.shape
    unit = embeddings.reshape(samples * views, -1)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        shared = labels[:, None] == labels[None, :]
    else:
        shared = labels @ labels.T > 0
    positives = np.repeat(np.repeat(shared, views, axis=0), views, axis=1)
    np.fill_diagonal(positives, False)
    logits = unit @ unit.T / temperature
    np.fill_diagonal(logits, -np.inf)
    log_probabilities = log_softmax(logits)
    has_positive = positives.any(axis=1)
    anchor_losses = np.zeros(samples * views)
    for anchor in np.flatnonzero(has_positive):
        mean_log_probability = log_probabilities[anchor, positives[anchor]].mean()
        anchor_losses[anchor] = -(temperature / base_temperature) * mean_log_probability
    scale = samples * views / max(has_positive.sum(), 1)
    return (anchor_losses * scale).reshape(samples, views).mean(axis=1)


def embeddings_of(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# Every test uses 6 samples of dimension 4 (one view or two) and 3 label
# columns, and chunks of 4 candidates: jax compiles each eager op once per shape.
SINGLE, VIEWS = (6, 4), (6, 2, 4)
LABELS = np.array([0, 1, 0, 2, 1, 3])  # label 3 has no positive in one view
MULTI_HOT = np.array(
    [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 1]], "float32"
)  # row 4 has no label: no positive, even in its other view
CASES = {
    "integer": (LABELS, SINGLE),
    "integer_views": (LABELS, VIEWS),
    "multi_hot": (MULTI_HOT, SINGLE),
    "multi_hot_views": (MULTI_HOT, VIEWS),
}


def test_hand_checked_pairs_of_orthogonal_samples():
    # Samples 0-1 and 2-3 are pairs of equal unit vectors; 4 and 5 have no
    # positive and are left out. At tau 1 each counted anchor sees its
    # positive at logit 1 and four others at logit 0.
    embeddings = np.eye(4, dtype="float32")[[0, 0, 1, 1, 2, 3]]
    labels = np.array([0, 0, 1, 1, 2, 3])
    value = SupConLoss(temperature=1.0, base_temperature=1.0)(labels, embeddings)
    np.testing.assert_allclose(as_numpy(value), -math.log(math.e / (math.e + 4.0)), rtol=1e-6)
    # tau 0.5 doubles the logits; temperature / base_temperature = 5 scales the loss.
    value = SupConLoss(temperature=0.5, base_temperature=0.1)(labels, embeddings)
    expected = 5.0 * -math.log(math.exp(2.0) / (math.exp(2.0) + 4.0))
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-6)
    # Per sample: the counted anchors times 6 / 4, zero for the excluded ones.
    per_sample = SupConLoss(1.0, 1.0, reduction=None)(labels, embeddings)
    anchor = -math.log(math.e / (math.e + 4.0))
    np.testing.assert_allclose(as_numpy(per_sample), [1.5 * anchor] * 4 + [0.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize("chunk_size", [None, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_per_sample_values_match_the_reference(case, chunk_size):
    labels, shape = CASES[case]
    embeddings = embeddings_of(1, shape)
    loss = SupConLoss(temperature=0.3, base_temperature=0.2, chunk_size=chunk_size, reduction=None)
    expected = supcon_reference(labels, embeddings, 0.3, 0.2)
    np.testing.assert_allclose(as_numpy(loss(labels, embeddings)), expected, rtol=2e-5)


def test_values_against_pytorch_metric_learning_and_supcontrast():
    # Literals computed in float64 with torch 2.13.0 and pytorch-metric-learning
    # 2.9.0 (`pip install --target /tmp/refpkgs --no-deps pytorch-metric-learning==2.9.0
    # tqdm`, then PYTHONPATH=/tmp/refpkgs), on the same draws of default_rng(2020):
    # - pml: `SupConLoss(temperature=t)(torch.tensor(x), torch.tensor(labels))`,
    #   which has no base temperature (ours with base_temperature == temperature);
    #   two views as 2B rows: `SupConLoss(0.2)(views.reshape(12, 4), labels.repeat(2))`;
    # - SupContrast's L_out steps: `f = F.normalize(views, dim=-1)`,
    #   `c = torch.cat(torch.unbind(f, 1))`, `logits = c @ c.T / t` minus the row
    #   max, `m = mask.repeat(2, 2) * (1 - eye)` with `mask = (Y @ Y.T > 0)` or
    #   `labels == labels.T`, `log_prob = logits - log((exp(logits) * (1 - eye)).sum(1))`,
    #   `(-(t / base) * (m * log_prob).sum(1) / m.sum(1)).mean()`.
    rng = np.random.default_rng(2020)
    single = rng.normal(size=SINGLE).astype("float32")
    for temperature, expected in ((0.1, 5.10642102054657), (0.5, 1.984770487501317)):
        value = SupConLoss(temperature, temperature)(LABELS, single)
        np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-5)
    views = rng.normal(size=VIEWS).astype("float32")
    value = SupConLoss(0.2, 0.2)(np.array([0, 1, 1, 2, 0, 3]), views)
    np.testing.assert_allclose(as_numpy(value), 3.7080436217752233, rtol=1e-5)
    views = rng.normal(size=VIEWS).astype("float32")
    multi_hot = np.array(
        [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 1]], "float32"
    )
    value = SupConLoss(0.2, 0.07)(multi_hot, views)
    np.testing.assert_allclose(as_numpy(value), 12.123668955246123, rtol=1e-5)
    value = SupConLoss(chunk_size=4)(np.array([0, 1, 1, 2, 0, 3]), views)
    np.testing.assert_allclose(as_numpy(value), 8.89090952517854, rtol=1e-5)


def test_eager_gradient_matches_central_differences():
    labels, shape = CASES["multi_hot_views"]
    embeddings = embeddings_of(2, shape).astype("float64")
    loss = SupConLoss(temperature=0.5, base_temperature=0.3, chunk_size=4)
    gradient = backend_gradient(lambda values: loss(labels, values), embeddings, dtype="float32")
    expected = central_differences(
        lambda values: np.mean(supcon_reference(labels, values, 0.5, 0.3)), embeddings
    )
    np.testing.assert_allclose(gradient, expected, rtol=1e-3, atol=1e-5)


def test_compiled_value_and_gradient_match_the_reference():
    labels, shape = CASES["integer"]
    embeddings = embeddings_of(3, shape)
    # The chunked path is compiled by the conformance case's jit-compiled fit.
    loss = SupConLoss(temperature=0.2)
    expected_value = np.mean(supcon_reference(labels, embeddings, 0.2, 0.07))
    traced = compiled(lambda y_true, y_pred: loss(y_true, y_pred))
    np.testing.assert_allclose(as_numpy(traced(labels, embeddings)), expected_value, rtol=1e-5)
    expected = central_differences(
        lambda values: np.mean(supcon_reference(labels, values, 0.2, 0.07)),
        embeddings.astype("float64"),
    )
    gradient = backend_gradient(lambda values: loss(labels, values), embeddings, compiled=True)
    np.testing.assert_allclose(gradient, expected, rtol=2e-3, atol=1e-4)


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0))
def test_value_ignores_label_names_sample_order_and_row_scale(seed, scale):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=6)
    embeddings = rng.normal(size=VIEWS).astype("float32")
    loss = SupConLoss(temperature=0.2)
    base = as_numpy(loss(labels, embeddings))
    renamed = rng.permutation(3)[labels] + 10
    order = rng.permutation(6)
    moved = loss(renamed[order], scale * embeddings[order])
    np.testing.assert_allclose(as_numpy(moved), base, rtol=1e-4)


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), base_temperature=st.floats(0.01, 10.0))
def test_value_scales_as_temperature_over_base_temperature(seed, base_temperature):
    labels = np.random.default_rng(seed).integers(0, 3, size=6)
    embeddings = embeddings_of(seed, SINGLE)
    reference = as_numpy(SupConLoss(0.3, 0.3)(labels, embeddings))
    value = as_numpy(SupConLoss(0.3, base_temperature)(labels, embeddings))
    np.testing.assert_allclose(value, reference * 0.3 / base_temperature, rtol=1e-5)


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_one_hot_labels_equal_integer_labels(seed):
    labels = np.random.default_rng(seed).integers(0, 3, size=6)
    embeddings = embeddings_of(seed, VIEWS)
    loss = SupConLoss(temperature=0.5, reduction=None)
    integer = as_numpy(loss(labels, embeddings))
    one_hot = as_numpy(loss(np.eye(3, dtype="float32")[labels], embeddings))
    np.testing.assert_allclose(one_hot, integer, rtol=1e-5)
    np.testing.assert_allclose(as_numpy(loss(labels[:, None], embeddings)), integer, rtol=1e-6)


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_views_are_anchors_like_separate_rows_with_repeated_labels(seed):
    labels = np.random.default_rng(seed).integers(0, 3, size=6)
    embeddings = embeddings_of(seed, VIEWS)
    loss = SupConLoss(temperature=0.4, reduction=None)
    per_sample = as_numpy(loss(labels, embeddings))
    rows = as_numpy(loss(np.repeat(labels, 2), embeddings.reshape(12, 4)))
    np.testing.assert_allclose(per_sample, rows.reshape(6, 2).mean(axis=1), rtol=1e-5)


def test_no_positive_anywhere_gives_zero_with_zero_gradient():
    embeddings = embeddings_of(4, SINGLE)
    loss = SupConLoss()
    labels = np.arange(6)
    np.testing.assert_array_equal(as_numpy(loss(labels, embeddings)), 0.0)
    gradient = backend_gradient(lambda values: loss(labels, values), embeddings, compiled=True)
    np.testing.assert_array_equal(gradient, np.zeros_like(gradient))
    # Samples without any label have no positive, not even their other view.
    no_labels = np.zeros((6, 3), "float32")
    np.testing.assert_array_equal(as_numpy(loss(no_labels, embeddings_of(4, VIEWS))), 0.0)


def test_nan_embedding_gives_nan_even_without_positives():
    embeddings = embeddings_of(5, SINGLE)
    embeddings[2, 1] = np.nan
    for labels in (LABELS, np.arange(6)):
        assert np.isnan(as_numpy(SupConLoss()(labels, embeddings)))


def test_ties_duplicates_and_half_precision_stay_finite():
    same = np.ones(VIEWS, "float16")
    labels = np.array([0, 0, 0, 1, 1, 1])
    loss = SupConLoss(temperature=0.05, base_temperature=0.05)
    # All 12 embeddings coincide: every anchor has 5 positives among 11 equal logits.
    np.testing.assert_allclose(as_numpy(loss(labels, same)), math.log(11.0), rtol=1e-3)
    gradient = backend_gradient(lambda values: loss(labels, values), same)
    assert np.all(np.isfinite(gradient))


def test_config_holds_every_argument():
    loss = SupConLoss(temperature=0.2, base_temperature=0.1, chunk_size=16)
    config = loss.get_config()
    assert (config["temperature"], config["base_temperature"], config["chunk_size"]) == (
        0.2,
        0.1,
        16,
    )
    assert SupConLoss.from_config(config).get_config() == config


def test_bad_shapes_raise():
    embeddings = np.zeros(SINGLE, "float32")
    with pytest.raises(ValueError, match=r"SupConLoss: `y_pred`.*\(B, V, D\).*\(6,\)"):
        SupConLoss()(LABELS, np.zeros((6,), "float32"))
    with pytest.raises(ValueError, match=r"SupConLoss: `y_true`.*\(B, C\).*\(6, 2, 2\)"):
        SupConLoss()(np.zeros((6, 2, 2)), embeddings)
    with pytest.raises(ValueError, match=r"SupConLoss: .*batch size.*\(5,\).*\(6, 4\)"):
        SupConLoss()(np.arange(5), embeddings)
    with pytest.raises(ValueError, match=r"SupConLoss: `y_true`.*None"):
        SupConLoss()(None, embeddings)


def test_label_values_are_checked_on_the_first_eager_call():
    embeddings = embeddings_of(6, SINGLE)
    fractional = np.array([0.0, 1.5, 1.0, 0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"SupConLoss: `y_true` must hold integers; 1 of 6"):
        SupConLoss()(fractional, embeddings)
    soft = MULTI_HOT.copy()
    soft[1, 0] = 0.5
    pattern = r"SupConLoss: `y_true` must hold multi-hot labels equal to 0 or 1; 1 of 18"
    with pytest.raises(ValueError, match=pattern):
        SupConLoss()(soft, embeddings)
    loss = SupConLoss()
    loss(LABELS, embeddings)
    # Later eager calls read no values (no host sync per training step).
    assert np.isfinite(as_numpy(loss(fractional, embeddings)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.0},
        {"temperature": float("nan")},
        {"base_temperature": -1.0},
        {"chunk_size": 0},
        {"chunk_size": 2.5},
    ],
)
def test_bad_hyperparameters_raise(kwargs):
    argument = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"SupConLoss.*{argument}"):
        SupConLoss(**kwargs)

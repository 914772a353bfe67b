import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    hypothesis_examples,
    log_softmax,
)
from dl_techniques.losses.self_supervised.nt_xent_loss import NTXentLoss


def nt_xent_reference(first, second, temperature):
    """Per-anchor NT-Xent of SimCLR, eq. (1), from the full 2B x 2B similarity matrix."""
    embeddings = np.concatenate([first, second]).astype("float64")
    embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    logits = embeddings @ embeddings.T / temperature
    count = len(embeddings)
    np.fill_diagonal(logits, -np.inf)
    partners = (np.arange(count) + count // 2) % count
    return -log_softmax(logits)[np.arange(count), partners]


def views(seed, pairs=5, features=4):
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(pairs, features))
    second = first + 0.7 * rng.normal(size=(pairs, features))
    return first.astype("float32"), second.astype("float32")


def test_hand_checked_orthogonal_pairs():
    # Anchor e1 sees its positive e1 (cos 1) and the two copies of e2 (cos 0).
    value = NTXentLoss(temperature=1.0)(None, {"view1": np.eye(2), "view2": np.eye(2)})
    np.testing.assert_allclose(as_numpy(value), -np.log(np.e / (np.e + 2.0)), rtol=1e-6)


@pytest.mark.parametrize("chunk_size", [None, 3, 20])
def test_both_forms_match_the_reference_per_sample(chunk_size):
    first, second = views(1)
    expected = nt_xent_reference(first, second, 0.3)
    loss = NTXentLoss(temperature=0.3, chunk_size=chunk_size, reduction=None)
    stacked = loss(None, np.concatenate([first, second]))
    np.testing.assert_allclose(as_numpy(stacked), expected, rtol=1e-5)
    pairs = loss(None, {"view1": first, "view2": second})
    np.testing.assert_allclose(as_numpy(pairs), 0.5 * (expected[:5] + expected[5:]), rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_gradient_matches_finite_differences(chunk_size):
    first, second = views(2, pairs=3, features=3)
    stacked = np.concatenate([first, second]).astype("float64")
    loss = NTXentLoss(temperature=0.5, chunk_size=chunk_size)
    gradient = input_gradient(
        lambda values: loss(None, values), keras.ops.convert_to_tensor(stacked, "float32")
    )
    expected = central_differences(
        lambda values: np.mean(nt_xent_reference(values[:3], values[3:], 0.5)), stacked
    )
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-3, atol=1e-5)


def test_each_anchor_has_two_b_minus_two_negatives():
    # Identical views of B orthogonal samples at temperature 1: the positive
    # has logit 1, the 2B - 2 negatives logit 0.
    for pairs in (2, 3, 5):
        value = NTXentLoss(temperature=1.0)(None, {"view1": np.eye(pairs), "view2": np.eye(pairs)})
        expected = -np.log(np.e / (np.e + 2 * pairs - 2))
        np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-6)


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0))
def test_value_ignores_row_scale_and_pair_order(seed, scale):
    first, second = views(seed)
    order = np.random.default_rng(seed).permutation(len(first))
    loss = NTXentLoss(temperature=0.2)
    base = as_numpy(loss(None, {"view1": first, "view2": second}))
    moved = loss(None, {"view1": scale * first[order], "view2": second[order]})
    np.testing.assert_allclose(as_numpy(moved), base, rtol=1e-4)
    swapped = loss(None, {"view1": second, "view2": first})
    np.testing.assert_allclose(as_numpy(swapped), base, rtol=1e-5)


def test_half_precision_and_duplicates_stay_finite():
    same = np.ones((4, 3), "float16")
    value = NTXentLoss(temperature=0.05)(None, {"view1": same, "view2": same})
    np.testing.assert_allclose(as_numpy(value), np.log(7.0), rtol=1e-3)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"NTXentLoss.*\(2B, D\).*\(5, 4\)"):
        NTXentLoss()(None, np.zeros((5, 4), "float32"))
    with pytest.raises(ValueError, match=r"NTXentLoss.*view1.*\(4, 3\).*\(4, 2\)"):
        NTXentLoss()(None, {"view1": np.zeros((4, 3)), "view2": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="NTXentLoss.*keys"):
        NTXentLoss()(None, {"view1": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="NTXentLoss.*temperature"):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ValueError, match="NTXentLoss.*chunk_size"):
        NTXentLoss(chunk_size=0)

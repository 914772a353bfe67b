import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing import numeric
from dl_techniques.losses.vision import BoundaryLoss, signed_distance_map


def brute_force_signed_distance(ids, num_classes):
    """Kervadec et al.'s one_hot2dist from all pairwise pixel distances, float64."""
    ids = np.asarray(ids)
    out = np.zeros((*ids.shape, num_classes))
    for image in range(ids.shape[0]):
        points = np.array(list(itertools.product(*(range(n) for n in ids.shape[1:]))))
        distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
        flat = ids[image].reshape(-1)
        for c in range(num_classes):
            inside = flat == c
            if not inside.any() or inside.all():
                continue
            to_object = distances[:, inside].min(axis=1)
            to_background = distances[:, ~inside].min(axis=1)
            phi = np.where(inside, 1.0 - to_background, to_object)
            out[image, ..., c] = phi.reshape(ids.shape[1:])
    return out


def boundary_reference(phi, logits, include_background=False):
    p = numeric.softmax(np.asarray(logits, "float64"))
    if not include_background:
        phi, p = phi[..., 1:], p[..., 1:]
    return (phi * p).reshape(p.shape[0], -1).mean(axis=1)


def per_image(loss, y_true, y_pred):
    loss.reduction = None
    return numeric.as_numpy(loss(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")))


def test_hand_checked_map_of_a_segment():
    phi = signed_distance_map(np.array([[[0, 1, 1, 0, 0]]]), 2)
    np.testing.assert_allclose(phi[0, 0, :, 1], [1.0, 0.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(phi[0, 0, :, 0], [0.0, 1.0, 1.0, 0.0, -1.0])


@pytest.mark.parametrize("shape", [(2, 7, 6), (1, 4, 5, 3)])
def test_distance_map_matches_brute_force_in_2d_and_3d(shape):
    rng = np.random.default_rng(len(shape))
    ids = rng.integers(0, 3, size=shape)
    ids[0] = np.minimum(ids[0], 1)
    phi = signed_distance_map(ids[..., None], 4)
    assert phi.shape == (*shape, 4) and phi.dtype == np.float32
    np.testing.assert_allclose(phi, brute_force_signed_distance(ids, 4), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("include_background", [False, True])
def test_loss_matches_reference_value_and_gradient(include_background):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 3, size=(2, 6, 5))
    phi = signed_distance_map(ids, 3)
    logits = rng.normal(size=(2, 6, 5, 3))
    loss = BoundaryLoss(include_background=include_background)
    expected = boundary_reference(phi, logits, include_background)
    np.testing.assert_allclose(per_image(loss, phi, logits), expected, rtol=1e-5, atol=1e-7)
    numeric.assert_gradient_matches_central_differences(
        lambda x, dtype: BoundaryLoss(
            include_background=include_background, reduction="sum", dtype=dtype
        )(phi, x),
        lambda x: boundary_reference(phi, x, include_background),
        logits,
        rtol=1e-4,
        atol=1e-8,
    )


def test_probabilities_and_single_channel_logits():
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 2, size=(2, 5, 5))
    phi = signed_distance_map(ids, 2)
    logits = rng.normal(size=(2, 5, 5, 2))
    probabilities = numeric.softmax(logits)
    expected = boundary_reference(phi, logits)
    from_probabilities = per_image(BoundaryLoss(from_logits=False), phi, probabilities)
    np.testing.assert_allclose(from_probabilities, expected, rtol=1e-5, atol=1e-7)
    single = per_image(BoundaryLoss(), phi[..., 1:], logits[..., 1:] - logits[..., :1])
    np.testing.assert_allclose(single, expected, rtol=1e-5, atol=1e-7)


@settings(max_examples=numeric.hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_map_signs_and_the_loss_prefers_mass_inside_the_objects(seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, size=(2, 6, 6))
    phi = signed_distance_map(ids, 3)
    one_hot = np.eye(3)[ids]
    present = one_hot.reshape(2, -1, 3).any(axis=1)[:, None, None, :]
    assert np.all(phi[one_hot == 1] <= 0.0)
    assert np.all(phi[(one_hot == 0) & present] >= 1.0)
    exact = per_image(BoundaryLoss(from_logits=False), phi, one_hot)
    noisy = numeric.softmax(rng.normal(size=one_hot.shape))
    assert np.all(exact <= per_image(BoundaryLoss(from_logits=False), phi, noisy) + 1e-6)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="BoundaryLoss.*from_logits"):
        BoundaryLoss(from_logits="yes")
    with pytest.raises(ValueError, match=r"BoundaryLoss.*same shape"):
        BoundaryLoss()(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"signed_distance_map.*\[0, 2\)"):
        signed_distance_map(np.full((1, 3, 3), 2), 2)
    with pytest.raises(ValueError, match="signed_distance_map.*num_classes"):
        signed_distance_map(np.zeros((1, 3, 3)), 0)

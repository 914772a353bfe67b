import math
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    backend_gradient,
    hypothesis_examples,
)
from dl_techniques.losses.metric_learning import ArcFace, CosFace, SubCenterArcFace

EMBEDDINGS = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.1]], dtype="float32")
LABELS = np.array([0, 1, 1])


def head_with_kernel(head, kernel):
    head.build((None, kernel.shape[0]))
    head.kernel.assign(kernel)
    return head


def random_kernel(seed, dim, columns):
    return np.random.default_rng(seed).normal(size=(dim, columns)).astype("float32")


HEADS = {
    "arcface": (lambda: ArcFace(4, scale=8.0, margin=0.5), {"kind": "arcface", "margin": 0.5}),
    "arcface_easy": (
        lambda: ArcFace(4, scale=8.0, margin=0.3, easy_margin=True),
        {"kind": "arcface", "margin": 0.3, "easy_margin": True},
    ),
    "cosface": (lambda: CosFace(4, scale=8.0, margin=0.35), {"kind": "cosface", "margin": 0.35}),
    "sub_center": (
        lambda: SubCenterArcFace(4, sub_centers=3, scale=8.0, margin=0.5),
        {"kind": "arcface", "margin": 0.5, "sub_centers": 3},
    ),
}


@pytest.mark.parametrize("name", list(HEADS))
def test_logits_match_the_insightface_formulas(name, margin_logits_reference):
    make_head, options = HEADS[name]
    rng = np.random.default_rng(len(name))
    embeddings = rng.normal(size=(6, 5)).astype("float32")
    labels = rng.integers(0, 4, size=6)
    kernel = random_kernel(1, 5, 4 * options.get("sub_centers", 1))
    head = head_with_kernel(make_head(), kernel)
    for given_labels in (labels, None):
        expected = margin_logits_reference(embeddings, kernel, given_labels, scale=8.0, **options)
        np.testing.assert_allclose(
            as_numpy(head(embeddings, given_labels)), expected, rtol=1e-5, atol=1e-5
        )


def test_arcface_hand_checked_target_logits_on_each_side_of_the_threshold():
    # Class columns e1, e2. Sample 0 is at angle 0 to its class: cos(0 + 0.5).
    # Sample 1 is at cos = 0.8 to e2: 0.8 cos(0.5) - 0.6 sin(0.5). Sample 2 has
    # cos = -0.995 to e2, below cos(pi - 0.5) = -0.8776: the fallback
    # cos - sin(pi - 0.5) * 0.5.
    kernel = np.eye(2, dtype="float32")
    head = head_with_kernel(ArcFace(2, scale=1.0, margin=0.5), kernel)
    embeddings = np.array([[1.0, 0.0], [0.6, 0.8], [0.1, -1.0]], dtype="float32")
    logits = as_numpy(head(embeddings, np.array([0, 1, 1])))
    cosine = -1.0 / math.sqrt(1.01)
    expected = [
        math.cos(0.5),
        0.8 * math.cos(0.5) - 0.6 * math.sin(0.5),
        cosine - math.sin(math.pi - 0.5) * 0.5,
    ]
    np.testing.assert_allclose(logits[[0, 1, 2], [0, 1, 1]], expected, rtol=1e-6)
    np.testing.assert_allclose(logits[:, 0][1:], [0.6, 0.1 / math.sqrt(1.01)], rtol=1e-6)


def test_easy_margin_leaves_non_positive_cosines_unchanged():
    head = head_with_kernel(ArcFace(2, scale=1.0, margin=0.5, easy_margin=True), np.eye(2))
    logits = as_numpy(head(np.array([[1.0, -1.0]], dtype="float32"), np.array([1])))
    np.testing.assert_allclose(logits[0, 1], -1.0 / math.sqrt(2.0), rtol=1e-6)


def test_cosface_subtracts_the_margin_from_the_target_only():
    head = head_with_kernel(CosFace(2, scale=2.0, margin=0.25), np.eye(2))
    logits = as_numpy(head(np.array([[0.6, 0.8]], dtype="float32"), np.array([0])))
    np.testing.assert_allclose(logits, [[2.0 * (0.6 - 0.25), 2.0 * 0.8]], rtol=1e-6)


def test_sub_centers_are_adjacent_columns_and_the_nearest_one_counts():
    # Class 0 owns columns 0-1, class 1 columns 2-3; the sample is closest to column 1.
    kernel = np.array([[0.0, 1.0, -1.0, 0.0], [1.0, 0.0, 0.0, -1.0]], dtype="float32")
    head = head_with_kernel(SubCenterArcFace(2, sub_centers=2, scale=1.0), kernel)
    logits = as_numpy(head(np.array([[0.8, 0.6]], dtype="float32")))
    np.testing.assert_allclose(logits, [[0.8, -0.6]], rtol=1e-6)


@pytest.mark.parametrize("name", list(HEADS))
def test_gradients_are_finite_where_the_cosine_is_exactly_one(name):
    make_head, options = HEADS[name]
    columns = 4 * options.get("sub_centers", 1)
    kernel = np.eye(2, columns, dtype="float32")
    head = head_with_kernel(make_head(), kernel)
    embeddings = keras.ops.convert_to_tensor(np.array([[1.0, 0.0], [0.0, 0.0]], "float32"))

    def total(values):
        return keras.ops.sum(head(values, np.array([0, 1])))

    assert np.all(np.isfinite(backend_gradient(total, embeddings)))


@settings(max_examples=hypothesis_examples(10), deadline=None)
@given(seed=st.integers(0, 2**16), margin=st.floats(0.0, 1.5))
def test_arcface_target_logit_never_exceeds_the_plain_cosine(seed, margin):
    rng = np.random.default_rng(seed)
    kernel = random_kernel(seed, 3, 4)
    head = head_with_kernel(ArcFace(4, scale=1.0, margin=margin), kernel)
    embeddings = rng.normal(size=(5, 3)).astype("float32")
    labels = rng.integers(0, 4, size=5)
    with_margin = as_numpy(head(embeddings, labels))
    plain = as_numpy(head(embeddings))
    rows = np.arange(5)
    assert np.all(with_margin[rows, labels] <= plain[rows, labels] + 1e-5)
    off_target = np.ones_like(plain, dtype=bool)
    off_target[rows, labels] = False
    np.testing.assert_allclose(with_margin[off_target], plain[off_target], rtol=1e-6)


def labelled_model(head):
    inputs = keras.Input((5,))
    labels = keras.Input((), dtype="int32")
    embeddings = keras.layers.Dense(3)(inputs)
    return keras.Model([inputs, labels], head(embeddings, labels))


@pytest.mark.parametrize("name", list(HEADS))
def test_stock_fit_with_labels_as_a_model_input_trains_the_class_weights(name):
    model = labelled_model(HEADS[name][0]())
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=keras.backend.backend() in ("tensorflow", "jax"),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype("float32")
    y = rng.integers(0, 4, size=8).astype("int32")
    kernel = model.layers[-1].kernel
    before = as_numpy(kernel)
    history = model.fit([x, y], y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(as_numpy(kernel), before)


def test_class_weights_reload_in_a_fresh_process(tmp_path):
    model = labelled_model(SubCenterArcFace(4, sub_centers=2, scale=8.0, margin=0.4))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5)).astype("float32")
    y = np.array([0, 3, 1], dtype="int32")
    path = tmp_path / "head.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    script = (
        "import sys, numpy as np, keras, dl_techniques.losses\n"
        "folder = sys.argv[1]\n"
        "model = keras.saving.load_model(folder + '/head.keras')\n"
        "logits = model([np.load(folder + '/x.npy'), np.load(folder + '/y.npy')])\n"
        "np.save(folder + '/logits.npy', keras.ops.convert_to_numpy(logits))\n"
        "print(type(model.layers[-1]).__name__, model.layers[-1].get_config()['sub_centers'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["SubCenterArcFace", "2"]
    np.testing.assert_allclose(
        np.load(tmp_path / "logits.npy"), as_numpy(model([x, y])), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    ("make_head", "message"),
    [
        (lambda: ArcFace(0), r"ArcFace.*num_classes"),
        (lambda: ArcFace(3, scale=0.0), r"ArcFace.*scale"),
        (lambda: ArcFace(3, margin=-0.1), r"ArcFace.*margin"),
        (lambda: ArcFace(3, easy_margin=1), r"ArcFace.*easy_margin"),
        (lambda: CosFace(3, margin=float("nan")), r"CosFace.*margin"),
        (lambda: SubCenterArcFace(3, sub_centers=0), r"SubCenterArcFace.*sub_centers"),
    ],
)
def test_bad_hyper_parameters_are_value_errors(make_head, message):
    with pytest.raises(ValueError, match=message):
        make_head()


def test_labels_out_of_range_or_of_another_batch_are_value_errors():
    head = ArcFace(2)
    with pytest.raises(ValueError, match=r"ArcFace.*labels.*\[0, 2\)"):
        head(EMBEDDINGS, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"ArcFace.*batch size"):
        head(EMBEDDINGS, np.array([0, 1]))


def test_config_round_trip_rebuilds_the_same_head():
    head = SubCenterArcFace(5, sub_centers=2, scale=30.0, margin=0.4, easy_margin=True)
    restored = SubCenterArcFace.from_config(head.get_config())
    assert restored.get_config() == head.get_config()
    assert keras.saving.get_registered_name(SubCenterArcFace) == "dl_techniques>SubCenterArcFace"

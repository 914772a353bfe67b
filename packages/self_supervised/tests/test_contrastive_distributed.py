"""CLIP, SigLIP, NT-Xent, SupCon on embeddings: N replicas train as one device on the global batch.

Only the current backend's engine runs, in a fresh process (the device layout
must be set before the framework initialises): JAX DataParallel over 4 host
devices, TF MirroredStrategy over 4 logical CPUs, torch DDP with 2 gloo
processes. Each script trains every loss for 3 steps alone and distributed.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.numeric import log_softmax
from dl_techniques.losses.core.testing.script_batch import add_script, script_result

BACKEND = keras.backend.backend()
MULTIDEVICE = Path(__file__).parent / "multidevice"
SCRIPT = add_script(
    MULTIDEVICE
    / {
        "tensorflow": "contrastive_tf_mirrored.py",
        "jax": "contrastive_jax_data_parallel.py",
        "torch": "contrastive_torch_gloo.py",
    }[BACKEND]
)
REPLICAS = {"tensorflow": 4, "jax": 4, "torch": 2}[BACKEND]
LOSS_NAMES = ["clip", "siglip", "ntxent", "supcon"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run():
    return script_result(SCRIPT)


def normalized(embeddings):
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def initial_similarities(problem):
    image = normalized(np.asarray(problem["image"]) @ np.asarray(problem["image_kernel"]))
    text = normalized(np.asarray(problem["text"]) @ np.asarray(problem["text_kernel"]))
    return image @ text.T


def clip_reference(similarities, temperature, label_smoothing):
    logits = similarities / temperature
    batch = len(logits)
    targets = (1.0 - label_smoothing) * np.eye(batch) + label_smoothing / batch
    image_loss = -(targets * log_softmax(logits)).sum(axis=1)
    text_loss = -(targets * log_softmax(logits.T)).sum(axis=1)
    return np.mean(0.5 * (image_loss + text_loss))


def siglip_reference(similarities, temperature, bias, chunk_size):
    del chunk_size
    logits = temperature * similarities + bias
    signs = 2.0 * np.eye(len(logits)) - 1.0
    return np.logaddexp(0.0, -signs * logits).sum() / len(logits)


def ntxent_reference(problem, temperature, chunk_size):
    """SimCLR's NT-Xent (``NTXentLoss``): image embeddings as view 1, texts as view 2."""
    del chunk_size
    image = normalized(np.asarray(problem["image"]) @ np.asarray(problem["image_kernel"]))
    text = normalized(np.asarray(problem["text"]) @ np.asarray(problem["text_kernel"]))
    embeddings = np.concatenate([image, text])
    logits = embeddings @ embeddings.T / temperature
    np.fill_diagonal(logits, -np.inf)
    count = len(embeddings)
    partners = (np.arange(count) + count // 2) % count
    return -np.mean(log_softmax(logits)[np.arange(count), partners])


def supcon_reference(problem, temperature, base_temperature, chunk_size):
    """SupCon L_out (``SupConLoss``): a sample's image and text embeddings as its two views.

    Multi-hot labels; every view is an anchor; positives share a label (a sample without labels
    has none, and its anchors are left out of the mean).
    """
    del chunk_size
    image = normalized(np.asarray(problem["image"]) @ np.asarray(problem["image_kernel"]))
    text = normalized(np.asarray(problem["text"]) @ np.asarray(problem["text_kernel"]))
    embeddings = np.stack([image, text], axis=1).reshape(-1, image.shape[1])
    labels = np.asarray(problem["labels"])
    positives = np.repeat(np.repeat(labels @ labels.T > 0, 2, axis=0), 2, axis=1)
    np.fill_diagonal(positives, False)
    logits = embeddings @ embeddings.T / temperature
    np.fill_diagonal(logits, -np.inf)
    log_probabilities = log_softmax(logits)
    anchors = np.flatnonzero(positives.any(axis=1))
    losses = [-log_probabilities[i, positives[i]].mean() for i in anchors]
    return temperature / base_temperature * np.mean(losses)


def test_engine_runs_the_expected_number_of_replicas(run):
    assert run["replicas"] == REPLICAS


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
def test_single_device_first_loss_matches_the_reference(run, loss_name):
    problem = run["problem"]
    if loss_name in ("ntxent", "supcon"):
        reference = {"ntxent": ntxent_reference, "supcon": supcon_reference}[loss_name]
        expected = reference(problem, **problem[loss_name])
    else:
        reference = {"clip": clip_reference, "siglip": siglip_reference}[loss_name]
        expected = reference(initial_similarities(problem), **problem[loss_name])
    np.testing.assert_allclose(run[loss_name]["single"]["loss"][0], expected, rtol=1e-5)


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
def test_distributed_training_matches_the_single_device_run(run, loss_name):
    single, distributed = run[loss_name]["single"], run[loss_name]["distributed"]
    assert len(single["loss"]) == len(distributed["loss"]) == 3
    np.testing.assert_allclose(distributed["loss"], single["loss"], rtol=1e-5, atol=1e-5)
    for single_weight, distributed_weight in zip(
        single["weights"], distributed["weights"], strict=True
    ):
        np.testing.assert_allclose(distributed_weight, single_weight, atol=1e-5)
    # The training moved the weights, so the comparison covers real updates.
    problem = run["problem"]
    assert not np.allclose(single["weights"][0], problem["image_kernel"], atol=1e-3)


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
def test_each_replica_saw_its_slice(run, loss_name):
    if BACKEND == "jax":
        # keras.distribution shards the global batch; the loss sees it whole.
        assert run[loss_name]["distributed"]["weight_devices"] == [REPLICAS]
    else:
        assert REPLICAS in run[loss_name]["distributed"]["replica_counts_seen"]
    if BACKEND == "torch":
        first, second = run[loss_name]["ranks"]
        np.testing.assert_array_equal(first["weights"][0], second["weights"][0])

"""Cross-replica helpers: identity on one device, collectives on several.

The multi-device runs start a fresh process (the device layout must be set
before the framework initialises) for the engine of the current Keras
backend only; the other engines run in their own backend's pytest process.
"""

import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from dl_techniques.losses.core.distributed import all_gather, all_mean, replica_count
from dl_techniques.losses.core.testing.script_batch import add_script, script_result

BACKEND = keras.backend.backend()
MULTIDEVICE = Path(__file__).parent / "multidevice"


def test_replica_count_is_one_without_distribution():
    assert replica_count() == 1


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_all_gather_returns_the_local_tensor_without_distribution(axis):
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)

    gathered = all_gather(ops.convert_to_tensor(x), axis=axis)

    np.testing.assert_array_equal(ops.convert_to_numpy(gathered), x)


def test_all_mean_returns_the_local_tensor_without_distribution():
    x = np.arange(6, dtype="float32").reshape(2, 3)

    np.testing.assert_array_equal(ops.convert_to_numpy(all_mean(x)), x)


@pytest.mark.parametrize(("shape", "axis"), [((2, 3), 2), ((2, 3), -3), ((), 0)])
def test_all_gather_rejects_an_axis_outside_the_tensor(shape, axis):
    pattern = rf"all_gather: axis={axis} .* shape {re.escape(str(tuple(shape)))}"
    with pytest.raises(ValueError, match=pattern):
        all_gather(np.zeros(shape, dtype="float32"), axis=axis)


def _arrays(run):
    return {name: np.asarray(value) for name, value in run["problem"].items()}


def _logsumexp_rows(scores):
    peak = scores.max(axis=1, keepdims=True)
    return peak[:, 0] + np.log(np.exp(scores - peak).sum(axis=1))


def _contrastive_gradient(batch, temperature):
    # d/dX sum_j logsumexp_i(X X^T / T)_ji = (P + P^T) X / T, P the row softmax.
    scores = batch @ batch.T / temperature
    probabilities = np.exp(scores - _logsumexp_rows(scores)[:, None])
    return (probabilities + probabilities.T) @ batch / temperature


def _first_step_loss(arrays):
    predictions = arrays["x"] @ arrays["kernel"] + arrays["bias"]
    centred = predictions - predictions.mean(axis=0)
    squared_error = ((arrays["y"] - predictions) ** 2).sum(axis=1)
    contrast = _logsumexp_rows(centred @ centred.T / arrays["temperature"])
    return np.mean(squared_error + contrast)


def _assert_same_training(single, distributed):
    assert len(distributed["loss"]) == len(single["loss"]) == 3
    np.testing.assert_allclose(distributed["loss"], single["loss"], rtol=1e-5, atol=1e-5)
    weight_pairs = zip(single["weights"], distributed["weights"], strict=True)
    for single_weight, distributed_weight in weight_pairs:
        np.testing.assert_allclose(distributed_weight, single_weight, atol=1e-5)


def _assert_collectives(per_replica, arrays, replicas):
    batch = arrays["batch"]
    slice_mean = np.mean(np.split(batch, replicas), axis=0)
    for results in per_replica:
        assert results["replicas"] == replicas
        np.testing.assert_array_equal(results["gathered"], batch)
        np.testing.assert_array_equal(results["gathered_columns"], arrays["columns"])
        np.testing.assert_allclose(results["mean"], slice_mean, rtol=1e-6)
        np.testing.assert_allclose(results["mean_of_scalar"], batch.sum() / replicas, rtol=1e-5)


class _ScriptRun:
    """Tests of what the backend's multi-device script (``script``) returned."""

    script = ""

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls):
        return script_result(MULTIDEVICE / cls.script)


@pytest.mark.slow
class MirroredStrategyRun(_ScriptRun):
    """tensorflow: MirroredStrategy over 4 logical CPU devices."""

    script = "tf_mirrored.py"

    def test_strategy_has_four_replicas(self, run):
        assert run["replicas_in_sync"] == 4

    def test_collectives_give_the_full_batch_and_the_global_mean(self, run):
        _assert_collectives(run["collectives"], _arrays(run), replicas=4)

    def test_helpers_are_identity_outside_the_replica_context(self, run):
        assert run["default_context_count"] == 1
        assert run["cross_replica_context_count"] == 1

    def test_gradient_through_all_gather_matches_single_device(self, run):
        arrays = _arrays(run)
        expected = _contrastive_gradient(arrays["batch"], arrays["temperature"])
        np.testing.assert_allclose(run["gradient"]["single"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(run["gradient"]["distributed"], expected, rtol=1e-5, atol=1e-6)

    def test_fit_under_strategy_matches_single_device(self, run):
        assert 4 in run["fit"]["distributed"]["replica_counts_seen"]
        expected_first_loss = _first_step_loss(_arrays(run))
        np.testing.assert_allclose(run["fit"]["single"]["loss"][0], expected_first_loss, rtol=1e-5)
        _assert_same_training(run["fit"]["single"], run["fit"]["distributed"])


@pytest.mark.slow
class JaxDataParallelRun(_ScriptRun):
    """jax: keras.distribution.DataParallel over 4 host CPU devices."""

    script = "jax_data_parallel.py"

    def test_loss_sees_the_global_batch_sharded_over_four_devices(self, run):
        assert run["devices"] == 4
        seen = run["distributed"]["seen"]
        assert seen["batch_sizes"] == [8]
        assert seen["prediction_devices"] == [4]
        assert seen["replica_counts"] == [1]
        assert run["distributed"]["weight_devices"] == [4]

    def test_single_device_run_is_unsharded(self, run):
        assert run["single"]["seen"]["prediction_devices"] == [1]

    def test_fit_under_data_parallel_matches_single_device(self, run):
        expected_first_loss = _first_step_loss(_arrays(run))
        np.testing.assert_allclose(run["single"]["loss"][0], expected_first_loss, rtol=1e-5)
        _assert_same_training(run["single"], run["distributed"])


@pytest.mark.slow
class TorchGlooRun(_ScriptRun):
    """torch: two processes in a gloo process group, each with half the batch."""

    script = "torch_gloo.py"

    def test_collectives_give_the_full_batch_and_the_global_mean(self, run):
        per_rank = [rank["collectives"] for rank in run["ranks"]]
        _assert_collectives(per_rank, _arrays(run), replicas=2)

    def test_helpers_are_identity_without_a_process_group(self, run):
        _assert_collectives([run["single"]["collectives"]], _arrays(run), replicas=1)

    def test_gradient_through_all_gather_matches_single_process(self, run):
        arrays = _arrays(run)
        expected = _contrastive_gradient(arrays["batch"], arrays["temperature"])
        distributed = np.concatenate([rank["gradient"] for rank in run["ranks"]])
        np.testing.assert_allclose(run["single"]["gradient"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(distributed, expected, rtol=1e-5, atol=1e-6)

    def test_ddp_training_matches_single_process(self, run):
        expected_first_loss = _first_step_loss(_arrays(run))
        np.testing.assert_allclose(run["single"]["fit"]["loss"][0], expected_first_loss, rtol=1e-5)
        for rank in run["ranks"]:
            _assert_same_training(run["single"]["fit"], rank["fit"])


# Collected under one name, so only the current backend's engine runs here.
TestMultiDeviceRun = {
    "tensorflow": MirroredStrategyRun,
    "jax": JaxDataParallelRun,
    "torch": TorchGlooRun,
}[BACKEND]
add_script(MULTIDEVICE / TestMultiDeviceRun.script)

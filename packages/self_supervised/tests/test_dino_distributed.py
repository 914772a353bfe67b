"""DINO/iBOT centres, VICRegLoss/BarlowTwinsLoss batch statistics and training
across replicas equal the single-device run.

Only the current backend's engine script runs, in a fresh process (the device
layout must be set before the framework initialises).
"""

from pathlib import Path

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.script_batch import add_script, script_result

BACKEND = keras.backend.backend()
MULTIDEVICE = Path(__file__).parent / "multidevice"
SCRIPTS = {
    "tensorflow": ("dino_tf_mirrored.py", 4),
    "jax": ("dino_jax_data_parallel.py", 4),
    "torch": ("dino_torch_gloo.py", 2),
}
SCRIPT = add_script(MULTIDEVICE / SCRIPTS[BACKEND][0])
STEPS = 3
MOMENTUM = 0.5


@pytest.fixture(scope="module")
def run():
    return script_result(SCRIPT)


def _distributed_runs(run):
    return run["ranks"] if BACKEND == "torch" else [run["distributed"]]


def _ema(batch_center):
    center = np.zeros_like(batch_center)
    for _ in range(STEPS):  # one step per epoch, the whole batch each time
        center = MOMENTUM * center + (1 - MOMENTUM) * batch_center
    return center


@pytest.mark.slow
def test_runs_on_the_expected_number_of_replicas(run):
    assert run["replicas"] == SCRIPTS[BACKEND][1]


@pytest.mark.slow
def test_centres_average_the_whole_batch_across_replicas(run):
    problem = {name: np.asarray(value) for name, value in run["problem"].items()}
    dino_center = _ema(problem["teacher"].reshape(-1, problem["teacher"].shape[-1]).mean(axis=0))
    mask = problem["mask"].astype(bool)
    # The replica slices mask different numbers of patches: only sums and
    # counts averaged separately give the global masked mean.
    ibot_center = _ema(problem["teacher_patches"][mask].mean(axis=0))
    for result in [run["single"], *_distributed_runs(run)]:
        np.testing.assert_allclose(result["dino_center"], dino_center[None], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result["ibot_center"], ibot_center[None], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_losses_and_weights_after_three_steps_equal_the_single_device_run(run):
    single = run["single"]
    for result in _distributed_runs(run):
        assert len(result["loss"]) == len(single["loss"]) == STEPS
        np.testing.assert_allclose(result["loss"], single["loss"], rtol=1e-5, atol=1e-5)
        for got, expected in zip(result["weights"], single["weights"], strict=True):
            np.testing.assert_allclose(got, expected, atol=1e-5)
    assert single["loss"][0] != single["loss"][-1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "term", ["vicreg", "vicreg_weighted", "barlow_twins", "barlow_twins_weighted"]
)
def test_vicreg_and_barlow_twins_take_their_statistics_over_the_global_batch(run, term):
    # The replica slices hold 2 (4 replicas) or 4 (2 processes) of the 8
    # pairs: statistics of a slice alone, or B - 1 of a slice in the unbiased
    # variance, would change the values.
    single = run["single"]
    for result in _distributed_runs(run):
        np.testing.assert_allclose(result[term], single[term], rtol=1e-5, atol=1e-6)
    assert single[term][0] != single[term][-1]
    unweighted = term.removesuffix("_weighted")
    assert single[unweighted][0] != single[f"{unweighted}_weighted"][0]

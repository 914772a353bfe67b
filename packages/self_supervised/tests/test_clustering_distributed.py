"""ClusteringLoss trained under tf.distribute equals the single-device run.

The loss reduces its batch itself (it is a BatchLoss), so it must also scale
its mean by the replica count as Keras' own mean reductions do; the script runs
in a fresh process, since the device layout must be set before TensorFlow starts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

SCRIPT = Path(__file__).parent / "multidevice" / "clustering_tf_mirrored.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow", reason="tf.distribute runs on TensorFlow"
    ),
]


@pytest.fixture(scope="module")
def run():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=SCRIPT.parent,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("weighting", ["unweighted", "weighted"])
def test_four_replicas_train_as_one_device(run, weighting):
    assert run["replicas"] == 4
    single, distributed = run[weighting]["single"], run[weighting]["distributed"]
    np.testing.assert_allclose(distributed["loss"], single["loss"], rtol=1e-5, atol=1e-6)
    for got, expected in zip(distributed["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert single["loss"][0] != single["loss"][-1]

"""ClusteringLoss trained under tf.distribute equals the single-device run.

The loss reduces its batch itself (it is a BatchLoss), so it must also scale
its mean by the replica count as Keras' own mean reductions do; the script runs
in a fresh process, since the device layout must be set before TensorFlow starts.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.script_batch import add_script, script_result

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
SCRIPT = Path(__file__).parent / "multidevice" / "clustering_tf_mirrored.py"
if ON_TENSORFLOW:
    add_script(SCRIPT)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.distribute runs on TensorFlow"),
]


@pytest.fixture(scope="module")
def run():
    return script_result(SCRIPT)


@pytest.mark.parametrize("weighting", ["unweighted", "weighted"])
def test_four_replicas_train_as_one_device(run, weighting):
    assert run["replicas"] == 4
    single, distributed = run[weighting]["single"], run[weighting]["distributed"]
    np.testing.assert_allclose(distributed["loss"], single["loss"], rtol=1e-5, atol=1e-6)
    for got, expected in zip(distributed["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert single["loss"][0] != single["loss"][-1]

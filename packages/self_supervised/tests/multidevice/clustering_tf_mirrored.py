"""ClusteringLoss under tf.distribute.MirroredStrategy on 4 logical CPUs vs one device.

Prints one JSON object on the last line of stdout; test_clustering_distributed.py
checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dl_techniques.losses.core.testing.devices import mirrored_cpu_strategy  # noqa: E402
from dl_techniques.losses.self_supervised import ClusteringLoss  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 3
REPLICAS = 4


def train(inputs, weights, strategy=None):
    def compiled():
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [keras.Input((inputs.shape[1],)), keras.layers.Dense(4), keras.layers.Softmax()]
        )
        # XLA cannot reach mirrored variables on the other logical devices.
        model.compile(keras.optimizers.SGD(0.5), loss=ClusteringLoss(), jit_compile=False)
        return model

    if strategy is None:
        model = compiled()
    else:
        with strategy.scope():
            model = compiled()
    history = model.fit(
        inputs,
        np.zeros((GLOBAL_BATCH,), "float32"),
        sample_weight=weights,
        batch_size=GLOBAL_BATCH,
        epochs=STEPS,
        shuffle=False,
        verbose=0,
    )
    return {
        "loss": [float(value) for value in history.history["loss"]],
        "weights": [value.tolist() for value in model.get_weights()],
    }


def main():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(GLOBAL_BATCH, 5)).astype("float32")
    weights = rng.uniform(0.0, 3.0, size=(GLOBAL_BATCH,)).astype("float32")
    strategy = mirrored_cpu_strategy(REPLICAS)
    result = {"replicas": strategy.num_replicas_in_sync}
    for name, sample_weight in (("unweighted", None), ("weighted", weights)):
        result[name] = {
            "single": train(inputs, sample_weight),
            "distributed": train(inputs, sample_weight, strategy),
        }
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

"""The distributed helpers under keras.distribution.DataParallel on 4 host CPUs.

Trains the same model on one device and data-parallel over four, recording
what the loss sees inside the jit-compiled step: its batch size, the replica
count and over how many devices its input is sharded. Prints one JSON object
on the last line of stdout; test_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import (  # noqa: E402
    GLOBAL_BATCH,
    LEARNING_RATE,
    STEPS,
    as_lists,
    centred_contrastive_loss,
    problem,
)

from dl_techniques.losses.core.distributed import replica_count  # noqa: E402

DEVICES = 4


def train(arrays):
    seen = {"batch_sizes": [], "replica_counts": [], "prediction_devices": []}

    def record_sharding(sharding):
        seen["prediction_devices"].append(len(sharding.device_set))

    def recording_loss(y_true, y_pred):
        seen["batch_sizes"].append(int(y_pred.shape[0]))
        seen["replica_counts"].append(replica_count())
        jax.debug.inspect_array_sharding(y_pred, callback=record_sharding)
        return centred_contrastive_loss(y_true, y_pred)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.set_weights([arrays["kernel"], arrays["bias"]])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss=recording_loss,
        jit_compile=True,
    )
    history = model.fit(
        arrays["x"], arrays["y"], batch_size=GLOBAL_BATCH, epochs=STEPS, shuffle=False, verbose=0
    )
    return {
        "loss": history.history["loss"],
        "weights": [np.asarray(weight).tolist() for weight in model.get_weights()],
        "weight_devices": sorted(
            {len(weight.value.sharding.device_set) for weight in model.weights}
        ),
        "seen": {name: sorted(set(values)) for name, values in seen.items()},
    }


def main():
    arrays = problem(DEVICES)
    devices = keras.distribution.list_devices("cpu")
    result = {"devices": len(devices), "problem": as_lists(arrays), "single": train(arrays)}
    with keras.distribution.DataParallel(devices=devices[:DEVICES]).scope():
        result["distributed"] = train(arrays)
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

"""DINO/iBOT under keras.distribution.DataParallel on 4 host CPUs vs one device.

Prints one JSON object on the last line of stdout; test_dino_distributed.py
checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)

import keras  # noqa: E402
from dino_common import (  # noqa: E402
    GLOBAL_BATCH,
    LEARNING_RATE,
    STEPS,
    as_lists,
    new_model,
    problem,
    summary,
    targets,
)

DEVICES = 4


def train(arrays):
    model = new_model(arrays)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), jit_compile=True)
    history = model.fit(
        arrays["crops"],
        targets(arrays),
        batch_size=GLOBAL_BATCH,
        epochs=STEPS,
        shuffle=False,
        verbose=0,
    )
    return summary(model, history.history)


def main():
    arrays = problem()
    devices = keras.distribution.list_devices("cpu")
    result = {"replicas": len(devices), "problem": as_lists(arrays), "single": train(arrays)}
    with keras.distribution.DataParallel(devices=devices[:DEVICES]).scope():
        result["distributed"] = train(arrays)
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

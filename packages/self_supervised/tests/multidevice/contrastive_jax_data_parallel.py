"""CLIP, SigLIP, NT-Xent and SupCon on embeddings, keras.distribution.DataParallel, 4 host CPUs.

Each loss trains the same model for 3 jit-compiled steps on one device and
data-parallel over four. Prints one JSON object on the last line of stdout;
test_contrastive_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from contrastive_common import (  # noqa: E402
    GLOBAL_BATCH,
    LEARNING_RATE,
    LOSS_NAMES,
    STEPS,
    as_lists,
    build_model,
    inputs,
    make_loss,
    problem,
    targets,
)

DEVICES = 4


def train(arrays, loss_name):
    model = build_model(arrays)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss=make_loss(loss_name),
        jit_compile=True,
    )
    history = model.fit(
        inputs(arrays),
        targets(arrays, loss_name),
        batch_size=GLOBAL_BATCH,
        epochs=STEPS,
        shuffle=False,
        verbose=0,
    )
    return {
        "loss": history.history["loss"],
        "weights": [np.asarray(weight).tolist() for weight in model.get_weights()],
        "weight_devices": sorted(
            {len(weight.value.sharding.device_set) for weight in model.weights}
        ),
    }


def main():
    arrays = problem()
    devices = keras.distribution.list_devices("cpu")
    single = {name: train(arrays, name) for name in LOSS_NAMES}
    result = {"replicas": len(devices[:DEVICES]), "problem": as_lists(arrays)}
    with keras.distribution.DataParallel(devices=devices[:DEVICES]).scope():
        for name in LOSS_NAMES:
            result[name] = {"single": single[name], "distributed": train(arrays, name)}
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

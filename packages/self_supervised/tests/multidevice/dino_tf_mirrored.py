"""DINO/iBOT under tf.distribute.MirroredStrategy on 4 logical CPUs vs one device.

Prints one JSON object on the last line of stdout; test_dino_distributed.py
checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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

from dl_techniques.losses.core.testing.devices import mirrored_cpu_strategy  # noqa: E402

REPLICAS = 4


def _compiled(arrays):
    model = new_model(arrays)
    # XLA cannot reach mirrored variables on the other logical devices.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), jit_compile=False)
    return model


def train(arrays, strategy=None):
    if strategy is None:
        model = _compiled(arrays)
    else:
        with strategy.scope():
            model = _compiled(arrays)
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
    strategy = mirrored_cpu_strategy(REPLICAS)
    result = {
        "replicas": strategy.num_replicas_in_sync,
        "problem": as_lists(arrays),
        "single": train(arrays),
        "distributed": train(arrays, strategy),
    }
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

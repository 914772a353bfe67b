"""CLIP, SigLIP, NT-Xent and SupCon on embeddings under tf.distribute.MirroredStrategy, 4 CPUs.

Each loss trains the same model for 3 steps alone and over 4 replicas with the
same global batch. Prints one JSON object on the last line of stdout;
test_contrastive_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import keras  # noqa: E402
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

from dl_techniques.losses.core.testing.devices import mirrored_cpu_strategy  # noqa: E402

REPLICAS = 4


def train(arrays, loss_name):
    model = build_model(arrays)
    # An XLA-compiled step cannot reach the mirrored variables on the other
    # logical devices (a TensorFlow limitation), so MirroredStrategy runs uncompiled.
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
        loss=make_loss(loss_name),
        jit_compile=False,
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
        "weights": [weight.tolist() for weight in model.get_weights()],
        "replica_counts_seen": sorted(model.replica_counts_seen),
    }


def main():
    arrays = problem()
    strategy = mirrored_cpu_strategy(REPLICAS)
    result = {"replicas": strategy.num_replicas_in_sync, "problem": as_lists(arrays)}
    for loss_name in LOSS_NAMES:
        single = train(arrays, loss_name)
        with strategy.scope():
            distributed = train(arrays, loss_name)
        result[loss_name] = {"single": single, "distributed": distributed}
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

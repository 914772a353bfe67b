"""The distributed helpers under tf.distribute.MirroredStrategy on 4 logical CPUs.

Prints one JSON object on the last line of stdout; test_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import (  # noqa: E402
    GLOBAL_BATCH,
    LEARNING_RATE,
    STEPS,
    as_lists,
    centred_contrastive_loss,
    contrastive_sum,
    problem,
)

from dl_techniques.losses.core.distributed import (  # noqa: E402
    all_gather,
    all_mean,
    replica_count,
)
from dl_techniques.losses.core.testing.devices import mirrored_cpu_strategy  # noqa: E402

REPLICAS = 4


def _per_replica(strategy, full, axis=0):
    def slice_for(context):
        return tf.constant(np.split(full, REPLICAS, axis=axis)[context.replica_id_in_sync_group])

    return strategy.experimental_distribute_values_from_function(slice_for)


def collectives(strategy, arrays):
    def on_replica(rows, column_block):
        return {
            "replicas": tf.constant(replica_count()),
            "gathered": all_gather(rows),
            "gathered_columns": all_gather(column_block, axis=-1),
            "mean": all_mean(rows),
            "mean_of_scalar": all_mean(tf.reduce_sum(rows)),
        }

    per_replica_args = (
        _per_replica(strategy, arrays["batch"]),
        _per_replica(strategy, arrays["columns"], axis=1),
    )
    results = strategy.run(on_replica, args=per_replica_args)
    local = {name: strategy.experimental_local_results(value) for name, value in results.items()}
    return [
        {name: np.asarray(values[replica]).tolist() for name, values in local.items()}
        for replica in range(REPLICAS)
    ]


def distributed_gradient(strategy, batch):
    def on_replica(rows):
        with tf.GradientTape() as tape:
            tape.watch(rows)
            objective = contrastive_sum(rows)
        return tape.gradient(objective, rows)

    local_gradients = strategy.experimental_local_results(
        strategy.run(on_replica, args=(_per_replica(strategy, batch),))
    )
    return np.concatenate([np.asarray(gradient) for gradient in local_gradients]).tolist()


def single_device_gradient(batch):
    rows = tf.constant(batch)
    with tf.GradientTape() as tape:
        tape.watch(rows)
        objective = contrastive_sum(rows)
    return tape.gradient(objective, rows).numpy().tolist()


def _compiled_model(arrays, loss):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.set_weights([arrays["kernel"], arrays["bias"]])
    # An XLA-compiled step cannot reach the mirrored variables on the other
    # logical devices (a TensorFlow limitation), so MirroredStrategy runs uncompiled.
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss=loss, jit_compile=False
    )
    return model


def train(arrays, strategy=None):
    replica_counts_seen = []

    def recording_loss(y_true, y_pred):
        replica_counts_seen.append(replica_count())
        return centred_contrastive_loss(y_true, y_pred)

    if strategy is None:
        model = _compiled_model(arrays, recording_loss)
    else:
        with strategy.scope():
            model = _compiled_model(arrays, recording_loss)
    history = model.fit(
        arrays["x"], arrays["y"], batch_size=GLOBAL_BATCH, epochs=STEPS, shuffle=False, verbose=0
    )
    return {
        "loss": history.history["loss"],
        "weights": [weight.tolist() for weight in model.get_weights()],
        "replica_counts_seen": sorted(set(replica_counts_seen)),
    }


def main():
    arrays = problem(REPLICAS)
    strategy = mirrored_cpu_strategy(REPLICAS)
    result = {
        "replicas_in_sync": strategy.num_replicas_in_sync,
        "problem": as_lists(arrays),
        "default_context_count": replica_count(),
        "collectives": collectives(strategy, arrays),
        "gradient": {
            "distributed": distributed_gradient(strategy, arrays["batch"]),
            "single": single_device_gradient(arrays["batch"]),
        },
        "fit": {"single": train(arrays), "distributed": train(arrays, strategy)},
    }
    with strategy.scope():
        result["cross_replica_context_count"] = replica_count()
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

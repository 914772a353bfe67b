"""F1Loss and BrierScoreLoss against keras.losses.BinaryCrossentropy.

All three losses see the same ``(batch, classes)`` input: one-hot targets
(valid for the Brier score's multi-class form and as multi-label targets for F1
and cross-entropy) and softmax probabilities. Target: ratio <= 1.5. On eager
torch the library losses also check label values (a host round trip per call),
which the jit backends skip.
"""

import keras
import numpy as np
from benchmarking import Case, print_ratio_table

from dl_techniques.losses.classification.brier_score_loss import BrierScoreLoss
from dl_techniques.losses.classification.f1_loss import F1Loss

BASELINE = "BinaryCrossentropy"


def run_classification(params, timing):
    batch, classes = params["batch"], params["classes"]
    rng = np.random.default_rng(0)
    one_hot = np.eye(classes, dtype="float32")[rng.integers(0, classes, size=batch)]
    logits = rng.normal(size=(batch, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = keras.ops.convert_to_tensor(one_hot)
    y_pred = keras.ops.convert_to_tensor(probabilities.astype("float32"))

    losses = [
        ("F1Loss", F1Loss()),
        ("BrierScoreLoss", BrierScoreLoss()),
        (BASELINE, keras.losses.BinaryCrossentropy()),
    ]
    medians = timing.medians([(label, loss, y_true, y_pred) for label, loss in losses])
    timing.print_header(f"input ({batch}, {classes}); forward + gradient w.r.t. y_pred")
    print_ratio_table("loss", [label for label, _ in losses], medians, BASELINE, "us", 1.5)


CASES = [
    Case(
        "classification",
        "F1Loss, BrierScoreLoss vs keras.losses.BinaryCrossentropy (target ratio <= 1.5)",
        run_classification,
        params={"batch": 4096, "classes": 16},
        quick={"batch": 64, "classes": 4},
        repetitions=300,
        warmup=10,
    )
]

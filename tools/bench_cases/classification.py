"""F1Loss and BrierScoreLoss against keras.losses.BinaryCrossentropy.

All three losses see the same ``(batch, classes)`` input: one-hot targets
(valid for the Brier score's multi-class form and as multi-label targets for F1
and cross-entropy) and softmax probabilities. Target: ratio <= 1.5. Where
torch is installed, the F1 formula transcribed in eager torch (the AnyLoss
amplifier, then ``1 - 2 TP / (2 TP + FP + FN + 1e-5)``) is timed on the same
data as a reference row, on every Keras backend.
"""

import keras
import numpy as np
from benchmarking import (
    EMPTY_STEP,
    Case,
    TorchReference,
    empty_step,
    print_fixed_cost,
    print_ratio_table,
    torch_available,
    torch_reference_note,
)

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
    if torch_available():
        losses.append(("torch F1 formula", TorchReference(torch_f1_loss)))
    losses.append((EMPTY_STEP, empty_step))
    medians = timing.medians([(label, loss, y_true, y_pred) for label, loss in losses])
    timing.print_header(f"input ({batch}, {classes}); forward + gradient w.r.t. y_pred")
    library = [
        label
        for label, loss in losses
        if not isinstance(loss, TorchReference) and label != EMPTY_STEP
    ]
    print_ratio_table("loss", library, medians, BASELINE, "us", 1.5)
    if torch_available():
        print()
        print_ratio_table("loss", ["F1Loss", "torch F1 formula"], medians, "torch F1 formula", "us")
    else:
        print(torch_reference_note())
    print_fixed_cost(medians)


def torch_f1_loss(y_true, y_pred):
    """The micro-averaged AnyLoss F1 loss (amplifying scale 73) in torch ops."""
    import torch

    predicted = torch.sigmoid(73.0 * (y_pred - 0.5))
    tp = (y_true * predicted).sum()
    fp = ((1.0 - y_true) * predicted).sum()
    fn = (y_true * (1.0 - predicted)).sum()
    return 1.0 - 2.0 * tp / (2.0 * tp + fp + fn + 1e-5)


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

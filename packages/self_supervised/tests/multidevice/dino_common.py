"""The DINO/iBOT problem shared by the multi-device scripts.

One model trains with DINOLoss (centring), DINOLoss (Sinkhorn-Knopp) and
iBOTPatchLoss together, and updates both centres in ``compute_loss``, so a
step's loss depends on the centres that earlier steps averaged across
replicas. VICRegLoss and BarlowTwinsLoss, without and with frequency weights,
train on the first two crops as views in the same step: their means,
variances, covariances and cross-correlation are batch statistics that every
replica must take over the global batch. Each of those four terms is tracked
on its own.
"""

import keras
import numpy as np

from dl_techniques.losses.core.distributed import replica_count
from dl_techniques.losses.self_supervised.barlow_twins_loss import BarlowTwinsLoss
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss
from dl_techniques.losses.self_supervised.ibot_patch_loss import iBOTPatchLoss
from dl_techniques.losses.self_supervised.vicreg_loss import VICRegLoss

GLOBAL_BATCH = 8
STEPS = 3
LEARNING_RATE = 0.1
OUT_DIM = 4
VIEWS = 3
GLOBAL_CROPS = 2
FEATURES = 3
MOMENTUM = 0.5
REDUNDANCY_TERMS = ("vicreg", "vicreg_weighted", "barlow_twins", "barlow_twins_weighted")


def problem():
    """Fixed float32 arrays; the mask gives every replica slice a different count."""
    rng = np.random.default_rng(11)
    arrays = {
        "crops": rng.normal(size=(GLOBAL_BATCH, VIEWS, FEATURES)),
        "teacher": rng.normal(size=(GLOBAL_BATCH, GLOBAL_CROPS, OUT_DIM)),
        "teacher_patches": rng.normal(size=(GLOBAL_BATCH, VIEWS, OUT_DIM)),
        "kernel": rng.normal(size=(FEATURES, OUT_DIM)),
        "bias": rng.normal(size=(OUT_DIM,)),
    }
    arrays = {name: value.astype("float32") for name, value in arrays.items()}
    arrays["mask"] = np.array(
        [[1, 0, 0], [0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 0], [0, 0, 0], [1, 0, 1], [0, 0, 1]],
        dtype="float32",
    )
    # Every replica slice holds a different weight total; 0 drops a pair.
    arrays["pair_weights"] = np.array([1, 2, 0, 1, 3, 1, 0.5, 2], dtype="float32")
    return arrays


TARGETS = ("teacher", "teacher_patches", "mask", "pair_weights")


def targets(arrays):
    return {name: arrays[name] for name in TARGETS}


@keras.saving.register_keras_serializable(package="dino_multidevice")
class DistillationModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dino_loss = DINOLoss(
            out_dim=OUT_DIM,
            num_global_crops=GLOBAL_CROPS,
            teacher_temp=0.07,
            center_momentum=MOMENTUM,
        )
        self.sinkhorn_loss = DINOLoss(
            out_dim=OUT_DIM,
            num_global_crops=GLOBAL_CROPS,
            teacher_temp=0.1,
            centering="sinkhorn_knopp",
            name="sinkhorn_loss",
        )
        self.ibot_loss = iBOTPatchLoss(
            patch_out_dim=OUT_DIM, teacher_temp=0.07, center_momentum=MOMENTUM
        )
        self.dino_center = self.dino_loss.state
        self.sinkhorn_state = self.sinkhorn_loss.state
        self.ibot_center = self.ibot_loss.state
        self.vicreg_loss = VICRegLoss(sim_coeff=1.0, std_coeff=2.0, cov_coeff=0.5)
        self.barlow_twins_loss = BarlowTwinsLoss(lambda_offdiag=0.1)
        self.redundancy_trackers = [keras.metrics.Mean(name=name) for name in REDUNDANCY_TERMS]
        self.student = keras.layers.Dense(OUT_DIM)

    def call(self, crops):
        return self.student(crops)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        patches = {"teacher_patches": y["teacher_patches"], "mask": y["mask"]}
        total = (
            self.dino_loss(y["teacher"], y_pred)
            + self.sinkhorn_loss(y["teacher"], y_pred)
            + self.ibot_loss(patches, y_pred)
        )
        if training:
            self.dino_loss.update_center(y["teacher"])
            self.ibot_loss.update_center(y["teacher_patches"], y["mask"])
        return total + self._redundancy_terms(y_pred, y["pair_weights"])

    def _redundancy_terms(self, y_pred, pair_weights):
        views = {"view1": y_pred[:, 0], "view2": y_pred[:, 1]}
        terms = (
            self.vicreg_loss(None, views),
            self.vicreg_loss(None, views, pair_weights),
            self.barlow_twins_loss(None, views),
            self.barlow_twins_loss(None, views, pair_weights),
        )
        # Both losses divide their value by the replica count under
        # tf.distribute, as Keras divides its mean reductions; the trackers
        # record the loss of the batch.
        unscaled = replica_count() if keras.backend.backend() == "tensorflow" else 1
        for tracker, term in zip(self.redundancy_trackers, terms, strict=True):
            tracker.update_state(term * unscaled)
        return sum(terms)


def new_model(arrays):
    model = DistillationModel()
    model(arrays["crops"][:2])
    model.student.set_weights([arrays["kernel"], arrays["bias"]])
    return model


def redundancy_values(model):
    """The tracked VICReg and Barlow Twins values since the last reset."""
    return {
        tracker.name: float(keras.ops.convert_to_numpy(tracker.result()))
        for tracker in model.redundancy_trackers
    }


def summary(model, history):
    """Losses per step (``history``: ``"loss"`` and each redundancy term), weights and centres."""

    def as_list(value):
        return np.asarray(keras.ops.convert_to_numpy(value), dtype="float64").tolist()

    return {
        **{name: [float(value) for value in history[name]] for name in REDUNDANCY_TERMS},
        "loss": [float(value) for value in history["loss"]],
        "weights": [as_list(weight) for weight in model.student.weights],
        "dino_center": as_list(model.dino_loss.center),
        "ibot_center": as_list(model.ibot_loss.center),
    }


def as_lists(arrays):
    return {name: value.tolist() for name, value in arrays.items()}

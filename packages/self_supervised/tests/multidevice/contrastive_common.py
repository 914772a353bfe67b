"""The paired problem, model and losses the contrastive multi-device scripts share.

SupCon reads the image and text embeddings of a sample as its two views and
takes multi-hot labels as targets (one sample has no label, so its anchors
drop out of the mean); the other losses get no targets.
"""

import keras
import numpy as np

from dl_techniques.losses.core.distributed import replica_count
from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.nt_xent_loss import NTXentLoss
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss
from dl_techniques.losses.self_supervised.supcon_loss import SupConLoss

GLOBAL_BATCH = 8
STEPS = 3
LEARNING_RATE = 0.1
CLIP_SETTINGS = {"temperature": 0.5, "label_smoothing": 0.1}
SIGLIP_SETTINGS = {"temperature": 5.0, "bias": -2.0, "chunk_size": 3}
NTXENT_SETTINGS = {"temperature": 0.5, "chunk_size": 5}
SUPCON_SETTINGS = {"temperature": 0.5, "base_temperature": 0.3, "chunk_size": 5}
# Multi-hot labels of the 8 samples; sample 5 has none.
LABELS = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0]]


class PairsAsViews:
    """NT-Xent on the pair model: the image embeddings as view1, the text ones as view2."""

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        views = {"view1": y_pred["image_embeddings"], "view2": y_pred["text_embeddings"]}
        return self.loss(y_true, views, sample_weight)


class PairsAsSampleViews:
    """SupCon on the pair model: each sample's image and text embeddings as its two views."""

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        views = keras.ops.stack([y_pred["image_embeddings"], y_pred["text_embeddings"]], axis=1)
        return self.loss(y_true, views, sample_weight)


def make_loss(name):
    if name == "clip":
        return CLIPContrastiveLoss(**CLIP_SETTINGS)
    if name == "ntxent":
        return PairsAsViews(NTXentLoss(**NTXENT_SETTINGS))
    if name == "supcon":
        return PairsAsSampleViews(SupConLoss(**SUPCON_SETTINGS))
    return SigLIPContrastiveLoss(**SIGLIP_SETTINGS)


def targets(arrays, name):
    """The labels SupCon trains on; ``None`` for the losses that take no targets."""
    return arrays["labels"] if name == "supcon" else None


LOSS_NAMES = ("clip", "siglip", "ntxent", "supcon")


def problem():
    """Fixed float32 arrays: two modalities of the same latent pairs, and the initial weights."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(GLOBAL_BATCH, 3))
    arrays = {
        "image": np.tanh(latent @ rng.normal(size=(3, 5))),
        "text": np.tanh(latent @ rng.normal(size=(3, 4))),
        "image_kernel": rng.normal(size=(5, 3)),
        "text_kernel": rng.normal(size=(4, 3)),
        "labels": np.array(LABELS),
    }
    return {name: value.astype("float32") for name, value in arrays.items()}


def as_lists(arrays):
    return {
        "clip": CLIP_SETTINGS,
        "siglip": SIGLIP_SETTINGS,
        "ntxent": NTXENT_SETTINGS,
        "supcon": SUPCON_SETTINGS,
        **{name: value.tolist() for name, value in arrays.items()},
    }


class PairModel(keras.Model):
    """Two linear encoders; the loss receives the embeddings dict whole."""

    def __init__(self):
        super().__init__()
        self.image_encoder = keras.layers.Dense(3, use_bias=False)
        self.text_encoder = keras.layers.Dense(3, use_bias=False)
        self.replica_counts_seen = set()

    def call(self, inputs):
        return {
            "image_embeddings": self.image_encoder(inputs["image"]),
            "text_embeddings": self.text_encoder(inputs["text"]),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        self.replica_counts_seen.add(replica_count())
        return self.loss(y, y_pred, sample_weight)


def build_model(arrays):
    model = PairModel()
    model({"image": arrays["image"][:1], "text": arrays["text"][:1]})
    model.image_encoder.set_weights([arrays["image_kernel"]])
    model.text_encoder.set_weights([arrays["text_kernel"]])
    return model


def inputs(arrays):
    return {"image": arrays["image"], "text": arrays["text"]}

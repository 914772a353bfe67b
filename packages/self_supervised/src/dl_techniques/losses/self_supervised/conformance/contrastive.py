"""Conformance-kit cases for the image-text contrastive losses and SupCon.

``dl-losses check dl-techniques-losses-self-supervised`` and the family's
``tests/test_conformance_contrastive.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss
from dl_techniques.losses.self_supervised.supcon_loss import SupConLoss

_BATCH = 5
_SUPCON_VIEWS = (6, 2, 4)


def conformance_cases():
    """Returns the CLIP and SigLIP cases, on a fixed ``(B, B)`` similarity matrix, and SupCon's.

    The kit compiles a plain model with the loss, and Keras applies one loss
    to each output of a dict separately, so the cases use the single-matrix
    form; the dict forms are tested in ``tests/test_contrastive_training.py``.
    Every loss returns one value per sample (``"per_sample"``). The SigLIP
    case scores the texts in blocks of 2 (blocks 2, 2, 1). SupCon gets
    integer labels and ``(B, V, D)`` views; sample 5's label appears once, so
    only its other view is its positive.
    """
    rng = np.random.default_rng(20240702)
    similarities = rng.uniform(-1.0, 1.0, size=(_BATCH, _BATCH)).astype("float32")
    ignored_labels = np.zeros((_BATCH,), dtype="float32")
    views = rng.normal(size=_SUPCON_VIEWS).astype("float32")
    return [
        LossCase(
            loss_class=CLIPContrastiveLoss,
            init_kwargs={"temperature": 0.5, "label_smoothing": 0.1},
            y_true=ignored_labels,
            y_pred=similarities,
            invalid_kwargs=(
                {"temperature": 0.0},
                {"temperature": float("inf")},
                {"temperature": "0.1"},
                {"label_smoothing": 1.0},
                {"label_smoothing": -0.1},
            ),
            sample_weight="per_sample",
            case_id="clip_similarity_matrix",
        ),
        LossCase(
            loss_class=CLIPContrastiveLoss,
            init_kwargs={"temperature": None},
            y_true=ignored_labels,
            y_pred=4.0 * similarities,
            invalid_kwargs=({"label_smoothing": True},),
            sample_weight="per_sample",
            case_id="clip_final_logits",
        ),
        LossCase(
            loss_class=SigLIPContrastiveLoss,
            init_kwargs={"temperature": 2.0, "bias": -1.0, "chunk_size": 2},
            y_true=ignored_labels,
            y_pred=similarities,
            invalid_kwargs=(
                {"temperature": -1.0},
                {"bias": float("nan")},
                # A bias on final logits (temperature None) is rejected.
                {"temperature": None},
                {"chunk_size": 0},
                {"chunk_size": 2.5},
                {"chunk_size": True},
            ),
            sample_weight="per_sample",
            case_id="siglip_chunked_similarity_matrix",
        ),
        LossCase(
            loss_class=SupConLoss,
            init_kwargs={"temperature": 0.5, "base_temperature": 0.2, "chunk_size": 4},
            y_true=np.array([0, 1, 0, 2, 1, 3]),
            y_pred=views,
            invalid_kwargs=(
                {"temperature": 0.0},
                {"base_temperature": float("inf")},
                {"base_temperature": "0.07"},
                {"chunk_size": 0},
                {"chunk_size": 2.5},
                {"chunk_size": True},
            ),
            sample_weight="per_sample",
            case_id="supcon_chunked_views",
        ),
    ]

"""Conformance-kit cases for the two-view losses (NT-Xent).

``dl-losses check dl-techniques-losses-self-supervised`` and the family's
``tests/test_conformance_views.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.self_supervised.nt_xent_loss import NTXentLoss

_PAIRS = 3
_FEATURES = 4


def conformance_cases():
    """Returns the NT-Xent cases on ``(2B, D)`` stacked views.

    The kit compiles a plain model with the loss, which hands it one tensor,
    so the cases use the stacked form; the dict form is tested in
    ``tests/test_nt_xent.py``. The loss returns one value per anchor
    (``"per_sample"``); the chunked case scores the 6 candidates in blocks
    of 4 and 2.
    """
    rng = np.random.default_rng(20260105)
    first = rng.normal(size=(_PAIRS, _FEATURES))
    second = first + 0.5 * rng.normal(size=(_PAIRS, _FEATURES))
    stacked = np.concatenate([first, second]).astype("float32")
    ignored_labels = np.zeros((2 * _PAIRS,), dtype="float32")
    return [
        LossCase(
            loss_class=NTXentLoss,
            init_kwargs={"temperature": 0.5},
            y_true=ignored_labels,
            y_pred=stacked,
            invalid_kwargs=(
                {"temperature": 0.0},
                {"temperature": float("nan")},
                {"temperature": "0.5"},
                {"chunk_size": 0},
                {"chunk_size": 2.5},
                {"chunk_size": True},
            ),
            sample_weight="per_sample",
            case_id="nt_xent_stacked_views",
        ),
        LossCase(
            loss_class=NTXentLoss,
            init_kwargs={"temperature": 0.2, "chunk_size": 4},
            y_true=ignored_labels,
            y_pred=stacked,
            invalid_kwargs=({"temperature": -1.0},),
            sample_weight="per_sample",
            case_id="nt_xent_chunked",
        ),
    ]

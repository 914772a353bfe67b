"""Conformance-kit cases for Acme's losses.

``dl-losses check acme-losses`` finds :func:`conformance_cases` through the
entry-point group ``dl_techniques.losses.conformance`` and runs core's
conformance kit over the returned cases; ``tests/test_conformance.py`` runs the
same kit under pytest.
"""

import numpy as np
from dl_techniques.losses.core.testing import LossCase

from acme_losses.log_cosh import AcmeLogCoshLoss


def conformance_cases():
    """Returns one ``LossCase`` per Acme loss, on small fixed inputs.

    ``AcmeLogCoshLoss`` returns one value per sample, so ``sample_weight`` is
    checked with the ``"per_sample"`` semantics.
    """
    rng = np.random.default_rng(7)
    target = rng.normal(size=(4, 5)).astype("float32")
    prediction = (target + rng.normal(scale=2.0, size=target.shape)).astype("float32")
    return [
        LossCase(
            loss_class=AcmeLogCoshLoss,
            init_kwargs={"scale": 0.5},
            y_true=target,
            y_pred=prediction,
            invalid_kwargs=({"scale": 0.0}, {"scale": -2.0}, {"scale": float("inf")}),
            sample_weight="per_sample",
            case_id="acme_log_cosh",
        ),
    ]

"""Data shared by the self-supervised tests."""

import numpy as np
import pytest


@pytest.fixture
def official_views():
    """Two views of 5 samples and 3 features, stacked as (10, 3) float64.

    Rows 0-4 are view 1 and rows 5-9 view 2. The VICReg and Barlow Twins
    literals were computed on them with the authors' code (see the tests).
    """
    return np.array(
        [
            [-1.43, -0.94, 0.39],
            [-0.52, 0.53, 0.81],
            [-1.44, 1.02, -0.6],
            [2.09, 0.73, -0.54],
            [0.2, 0.21, 0.33],
            [-0.73, -0.67, 1.22],
            [-0.2, 0.44, 0.05],
            [-2.22, 1.12, -0.25],
            [2.81, 0.42, -0.5],
            [-0.21, -0.0, -0.81],
        ]
    )

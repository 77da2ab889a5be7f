# aidge_incremental before anything imports aidge_core: one OpenMP runtime for
# Aidge's CPU kernels (aidge_incremental/backend/_openmp_preload.py).
import aidge_incremental  # noqa: F401

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)

"""Fixtures shared by the whole suite."""
import os

# The convolution algorithm by shape alone, not by a timing (the same choice,
# and so the same rounding, on every run and machine; no cache file written):
# tests/backend/test_conv_algorithms.py tests the autotune table itself.
os.environ.setdefault("AIDGE_INCREMENTAL_AUTOTUNE", "off")

# aidge_incremental before anything imports aidge_core: one OpenMP runtime for
# Aidge's CPU kernels (aidge_incremental/backend/_openmp_preload.py).
import aidge_incremental  # noqa: F401

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (the embedded dataset), 80/20 stratified split of seed 0."""
    from aidge_incremental.datasets import load_dataset
    return load_dataset("digits")


@pytest.fixture(scope="session", autouse=True)
def private_state_home(tmp_path_factory):
    """The record of the binaries this project built (export/trust.py) lives under
    XDG_STATE_HOME: the suite keeps its own, never reading or writing the user's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    yield
    patch.undo()

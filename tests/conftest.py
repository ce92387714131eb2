"""Shared test fixtures."""

import pytest
import torch
from transferlab import compute


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks gain nothing from 2 threads, and 2 spinning threads stall badly when other
    jobs share the 2 cores; restore the caller's setting afterwards. Through `compute`, so
    that its first-compute default (`ensure_threads`) keeps this choice."""
    before = torch.get_num_threads()
    compute.configure_threads(1)
    yield
    compute.configure_threads(before)

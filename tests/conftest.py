import pytest
import torch

from models import likelihood, meta, prior


@pytest.fixture
def regression_functions():
    """The BayesFlow linear-regression tutorial as single-draw functions."""
    return prior, likelihood, meta


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: small batches gain nothing from threads, and lose a
    lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

import pytest

from models import likelihood, meta, prior


@pytest.fixture
def regression_functions():
    """The BayesFlow linear-regression tutorial as single-draw functions."""
    return prior, likelihood, meta

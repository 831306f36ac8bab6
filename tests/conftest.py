import pytest
import torch

from workbench.data.registry import make_dataset


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def gibbs():
    return make_dataset("gibbs-1d")


@pytest.fixture(scope="session")
def gibbs_tasks(gibbs):
    """A few small fixed batches of gibbs-1d tasks."""
    return gibbs.test_set(32, batch_size=8, seed=123)

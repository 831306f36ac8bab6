import pytest
import torch

from workbench.data.registry import make_dataset

# At import as well: module- and session-scoped fixtures are built before the autouse fixture
# below runs, and a result computed with another thread count can differ in the last bits.
torch.set_num_threads(2)


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

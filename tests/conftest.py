import pytest
import torch


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: small tensors gain nothing from a second thread, and
    a thread team waiting at each operation on a shared machine made a solver sweep 20x
    slower (12.6 s against 0.5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

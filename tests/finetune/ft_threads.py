"""Fine-tuning tests run torch on one thread (``from ft_threads import one_thread``: a module-wide autouse
fixture): their tensors are tiny, and on a shared 2-core machine the threads of a larger pool spend their time
waiting for each other."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

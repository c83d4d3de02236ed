import mlx.core as mx
import pytest


@pytest.fixture(autouse=True)
def _default_device(request):
    # test_<op>.py pins down the CPU kernels, test_<op>_cuda.py the GPU ones (skipped without them).
    with mx.stream(mx.gpu if request.module.__name__.endswith("_cuda") else mx.cpu):
        yield

import mlx.core as mx
import pytest


@pytest.fixture(autouse=True)
def _cpu_default():
    # The extension's CPU kernels are what these tests pin down; GPU runs go through conformance.
    with mx.stream(mx.cpu):
        yield

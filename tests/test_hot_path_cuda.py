"""tests/test_hot_path.py on the GPU: the hot paths must pick the CUDA kernels there (the
module name makes tests/conftest.py run these tests on the GPU)."""

from _cuda import REQUIRES_CUDA_KERNELS
from test_hot_path import *  # noqa: F401,F403 (the same tests, collected again here)

pytestmark = REQUIRES_CUDA_KERNELS

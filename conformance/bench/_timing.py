"""Wall-clock timing of MLX calls: warm-up, batching of independent calls, median and IQR."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Callable

import mlx.core as mx

# A sample shorter than this is dominated by launch/sync overhead: batch more calls into it.
MIN_SAMPLE_S = 5e-3
MAX_BATCH = 256
# Batched outputs stay alive until their eval: cap the memory they pin.
MAX_BATCH_BYTES = 1 << 30
CACHE_LIMIT = 4 << 30


def prepare() -> None:
    """Lets MLX keep freed buffers for reuse. The CPU allocator caches 32 MB by default, so each
    large output would be fresh memory that page-faults (copy measured 3.4 vs 27 GB/s)."""
    mx.set_cache_limit(CACHE_LIMIT)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call: median and quartiles over ``repeats`` samples of ``batch`` calls."""

    median: float
    q1: float
    q3: float
    batch: int
    repeats: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def _sample(fn: Callable, args: tuple, batch: int) -> float:
    start = time.perf_counter()
    outs = [fn(*args) for _ in range(batch)]
    mx.eval(outs)
    return (time.perf_counter() - start) / batch


def _calibrate(fn: Callable, args: tuple, warmup: int, out_bytes: int) -> int:
    """Warms ``fn`` up and returns how many calls a sample needs to last MIN_SAMPLE_S."""
    for _ in range(max(warmup, 1)):
        single = _sample(fn, args, 1)
    if single >= MIN_SAMPLE_S:
        return 1
    batch = min(math.ceil(MIN_SAMPLE_S / max(single, 1e-7)), MAX_BATCH,
                max(1, MAX_BATCH_BYTES // max(out_bytes, 1)))
    _sample(fn, args, batch)  # warm the allocator cache for the batch's outputs
    return batch


def _timing(samples: list[float], batch: int) -> Timing:
    samples = sorted(samples)
    if len(samples) >= 4:
        q1, _, q3 = statistics.quantiles(samples, n=4)
    else:
        q1, q3 = samples[0], samples[-1]
    return Timing(statistics.median(samples), q1, q3, batch, len(samples))


def _graph_cache(device: mx.Device) -> bool:
    """Whether evaluations on ``device`` go through MLX's CUDA graph cache."""
    return device.type == mx.gpu and mx.cuda.is_available()


def measure_all(columns: dict[str, tuple[Callable, tuple]], device: mx.Device, *, repeats: int,
                warmup: int, out_bytes: int) -> dict[str, Timing | Exception]:
    """Times each ``fn(*args)`` of ``columns`` on ``device``: a Timing per column, or the
    exception it raised. Samples are taken round-robin over the columns, so load from other
    processes hits every column alike and their ratios stay meaningful on a shared machine.
    Each sample evaluates ``batch`` independent calls in one ``mx.eval`` (launch and sync
    overhead amortised), ``batch`` chosen per column so a sample lasts at least MIN_SAMPLE_S.

    On CUDA each timed sample follows an untimed one of the same column: MLX caches one
    executable graph per sequence of node types, which two columns of one kernel a call share,
    and re-pointing it between their kernels on every sample added ~1.5 us a call to one of
    them on the H100 (csrc/cuda/NOTES.md, sixth session)."""
    prime = len(columns) > 1 and _graph_cache(device)
    results: dict[str, Timing | Exception] = {}
    batches: dict[str, int] = {}
    samples: dict[str, list[float]] = {}
    with mx.stream(device):
        for name, (fn, args) in columns.items():
            try:
                batches[name] = _calibrate(fn, args, warmup, out_bytes)
                samples[name] = []
            except Exception as error:  # noqa: BLE001 - reported per column by the caller
                results[name] = error
        for _ in range(repeats):
            for name in samples:
                fn, args = columns[name]
                if prime:
                    _sample(fn, args, batches[name])
                samples[name].append(_sample(fn, args, batches[name]))
    for name, values in samples.items():
        results[name] = _timing(values, batches[name])
    return {name: results[name] for name in columns}


def measure(fn: Callable, args: tuple, device: mx.Device, *, repeats: int, warmup: int,
            out_bytes: int) -> Timing:
    """Times one ``fn(*args)`` (see ``measure_all``); exceptions propagate."""
    result = measure_all({"fn": (fn, args)}, device, repeats=repeats, warmup=warmup, out_bytes=out_bytes)["fn"]
    if isinstance(result, Exception):
        raise result
    return result

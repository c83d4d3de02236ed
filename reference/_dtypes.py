"""Dtype rules shared by the references."""

import mlx.core as mx


def accumulation_dtype(dtype: mx.Dtype) -> mx.Dtype:
    """float64 inputs accumulate in float64 (the oracle path); everything else in float32."""
    return mx.float64 if dtype == mx.float64 else mx.float32


def output_dtype(*arrays) -> mx.Dtype:
    """Type promotion over the array arguments that are present (None is skipped)."""
    return mx.result_type(*(a for a in arrays if a is not None))

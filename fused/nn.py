"""``mlx.nn`` modules backed by the fused ops.

Each class subclasses its ``mlx.nn`` counterpart: same constructor, parameters and state dict
(weights load unchanged); only ``__call__`` runs the fused op.
"""

from __future__ import annotations

import mlx.nn as nn

from .layer_norm import layer_norm
from .rms_norm import rms_norm
from .rope import rope


class RMSNorm(nn.RMSNorm):
    """``mlx.nn.RMSNorm`` running ``mlxr.fused.rms_norm``."""

    def __call__(self, x):
        return rms_norm(x, self["weight"], self.eps)


class LayerNorm(nn.LayerNorm):
    """``mlx.nn.LayerNorm`` running ``mlxr.fused.layer_norm``."""

    def __call__(self, x):
        weight = self.weight if "weight" in self else None
        bias = self.bias if "bias" in self else None
        return layer_norm(x, weight, bias, self.eps)


class RoPE(nn.RoPE):
    """``mlx.nn.RoPE`` running ``mlxr.fused.rope``."""

    def __call__(self, x, offset: int = 0):
        return rope(x, self.dims, traditional=self.traditional, base=self.base, scale=self.scale, offset=offset)

"""Swap ``mlx.nn`` modules of a model for their fused counterparts, gated by certification."""

from __future__ import annotations

import dataclasses

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from . import nn as fused_nn

# Exact mlx.nn class -> (op name, fused subclass). Exact: a user subclass may change behaviour.
SUPPORTED = {
    nn.RMSNorm: ("rms_norm", fused_nn.RMSNorm),
    nn.LayerNorm: ("layer_norm", fused_nn.LayerNorm),
    nn.RoPE: ("rope", fused_nn.RoPE),
}
FUSED_TO_ORIGINAL = {fused: original for original, (_, fused) in SUPPORTED.items()}


@dataclasses.dataclass
class PatchReport:
    """What ``patch`` replaced (path, op, dtype) and what it skipped (path, class, reason)."""

    replaced: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"replaced {len(self.replaced)} module(s), skipped {len(self.skipped)}"]
        lines += [f"  + {path}: {op} ({dtype})" for path, op, dtype in self.replaced]
        lines += [f"  - {path} [{cls}]: {why}" for path, cls, why in self.skipped]
        return "\n".join(lines)


def _model_dtype(model: nn.Module) -> mx.Dtype:
    # RoPE has no weights: it runs in the dtype of the activations, i.e. of the model.
    leaves = tree_flatten(model.parameters())
    return leaves[0][1].dtype if leaves else mx.float32


def patch(model: nn.Module, *, ops=None, only_certified: bool = True, results=None) -> PatchReport:
    """Replace supported modules of ``model`` in place with the fused ones.

    Supported: ``mlx.nn.RMSNorm``, ``LayerNorm`` and ``RoPE`` (as used by mlx-lm's Llama,
    Mistral and Qwen models). ``ops`` limits the swap to those op names. With
    ``only_certified`` an op is swapped only if the local certification results
    (``results``: a results file of ``pytest conformance/``; default see
    ``mlxr.conformance.results.default_path``) certify it on the default device in the
    module's dtype. The swap changes each module's class to the fused subclass, so parameters,
    state dicts and outside references stay as they are; ``unpatch`` restores the classes.
    """
    from mlxr.conformance.results import certification

    report = PatchReport()
    device = "cpu" if mx.default_device().type == mx.cpu else "gpu"
    model_dtype = _model_dtype(model)
    for path, module in model.named_modules():
        entry = SUPPORTED.get(type(module))
        if entry is None:
            if isinstance(module, tuple(FUSED_TO_ORIGINAL)):
                report.skipped.append((path, type(module).__name__, "already fused"))
            elif "rope" in type(module).__name__.lower() or "norm" in type(module).__name__.lower():
                report.skipped.append((path, type(module).__name__, "no fused drop-in for this class"))
            continue
        op, fused_cls = entry
        dtype = module.weight.dtype if "weight" in module else model_dtype
        dtype_name = str(dtype).split(".")[-1]
        if ops is not None and op not in ops:
            report.skipped.append((path, type(module).__name__, f"{op} not in ops={sorted(ops)}"))
            continue
        if only_certified:
            ok, why = certification(op, device, dtype_name, results)
            if not ok:
                report.skipped.append((path, type(module).__name__, why))
                continue
        module.__class__ = fused_cls
        report.replaced.append((path, op, dtype_name))
    return report


def unpatch(model: nn.Module) -> int:
    """Restore every fused module of ``model`` to its ``mlx.nn`` class; returns how many."""
    restored = 0
    for _, module in model.named_modules():
        original = FUSED_TO_ORIGINAL.get(type(module))
        if original is not None:
            module.__class__ = original
            restored += 1
    return restored

"""Option helpers shared by the ``mlxr-conform`` subcommands (and the pytest plugin).

Parsers turn strings into MLX objects lazily, so building the argument parser imports nothing
heavy; ``environment()`` gives the facts every results-file row carries.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
from pathlib import Path

DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64")
DTYPE_ALIASES = {"f32": "float32", "fp32": "float32", "f16": "float16", "fp16": "float16",
                 "half": "float16", "bf16": "bfloat16", "f64": "float64", "fp64": "float64"}


def add_device_option(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--device", choices=("cpu", "gpu"), default=default,
                        help=f"device to run on (default: {default})")


def add_dtype_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", action="append", metavar="DTYPE",
                        help="dtype(s), comma-separated or repeated: float32 (f32), float16 (f16), "
                             "bfloat16 (bf16), float64 (f64); default: each case's own list")


def add_results_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--results", default=default, metavar="FILE",
                        help=f"JSON results file (default: {default})")


def dtype_names(values: list[str] | None) -> list[str] | None:
    """Canonical dtype names from ``--dtype`` values (None when the option was not given)."""
    if not values:
        return None
    names = []
    for value in values:
        for item in filter(None, (v.strip().lower() for v in value.split(","))):
            name = DTYPE_ALIASES.get(item, item)
            if name not in DTYPE_NAMES:
                raise argparse.ArgumentTypeError(
                    f"unknown dtype {item!r}: expected one of {', '.join(DTYPE_NAMES)}")
            names.append(name)
    return list(dict.fromkeys(names))


def to_dtype(name: str):
    import mlx.core as mx

    return getattr(mx, name)


def dtype_name(dtype) -> str:
    """'float32' for mx.float32 (str(dtype) is 'mlx.core.float32')."""
    return str(dtype).rsplit(".", 1)[-1]


def parse_shapes(value: str) -> list[tuple[int, ...]]:
    """``"4096x4096,8192x4096"`` -> ``[(4096, 4096), (8192, 4096)]``."""
    shapes = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        try:
            shape = tuple(int(d) for d in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad size {item!r}: expected e.g. 4096x4096") from None
        if not shape or any(d <= 0 for d in shape):
            raise argparse.ArgumentTypeError(f"bad size {item!r}: dimensions must be positive")
        shapes.append(shape)
    return shapes


def to_device(name: str):
    """mx.cpu / mx.gpu as a Device, failing clearly when this MLX build has no GPU."""
    import mlx.core as mx

    device = mx.Device(mx.gpu if name == "gpu" else mx.cpu)
    if name == "gpu" and not mx.is_available(device):
        raise SystemExit("mlxr-conform: no GPU in this MLX build (mlx[cpu]?); run `mlxr-conform doctor`")
    return device


def git_commit(root: Path | None = None) -> str | None:
    """The checkout's commit (with '+dirty' if modified), or None outside a git tree."""
    root = root or Path(__file__).resolve().parent  # git finds the checkout from any folder in it
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict:
    """Facts identifying a run: device, MLX version and build, machine, CPU ISA, time, commit."""
    import mlx.core as mx

    from ... import _ext

    facts = {
        "device": device,
        "mlx_version": mx.__version__,
        "mlx_backend": _ext.mlx_backend,
        "gpu_kernels": _ext.gpu_kernels,
        "machine": f"{platform.node()} ({platform.system()} {platform.machine()}, {cpu_model()}, "
                   f"{os.cpu_count()} cores)",
        "isa": _ext.cpu_isa(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        # Other processes' load explains noisy numbers on shared machines.
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device == "gpu":
        try:
            facts["gpu"] = mx.device_info().get("device_name")
        except (AttributeError, RuntimeError):
            facts["gpu"] = None
    return facts

"""``mlxr-conform doctor``: is this install able to run and certify fused ops?

Checks MLX (version against the pin, build, devices), the extension (loads, built against the
same MLX, shares mlx.core's nanobind ABI, Metal library present), the CPU ISA, and which ops
have a fused kernel on which device, then runs each listed kernel once to prove it executes.
Each problem is printed with its fix; the exit status is 1 if there is any.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REBUILD = "rebuild the extension against the installed MLX: pip install --no-build-isolation -e ."

# Run in a fresh interpreter so import order is controlled: mlx.core first, then the extension.
# nanobind modules of one domain share state exactly when their ABI keys match, so a new
# '__nb_internals_*_mlx__' key appearing with the extension means it could not join mlx.core's.
_ABI_PROBE = r"""
import ctypes, json
api = ctypes.pythonapi
api.PyInterpreterState_Get.restype = ctypes.c_void_p
api.PyInterpreterState_GetDict.restype = ctypes.c_void_p  # borrowed: ctypes must not own it
api.PyInterpreterState_GetDict.argtypes = [ctypes.c_void_p]
def keys():
    d = ctypes.cast(api.PyInterpreterState_GetDict(api.PyInterpreterState_Get()), ctypes.py_object).value
    return sorted(k for k in d if isinstance(k, str) and k.startswith("__nb_internals"))
out = {}
import mlx.core as mx
out["mlx_keys"] = keys()
try:
    import mlxr._ext as ext
    out["ext_file"] = ext.__file__
except Exception as e:
    out["import_error"] = f"{type(e).__name__}: {e}"
else:
    out["ext_keys"] = keys()
    try:  # rms_norm is the spine op: every build has it
        mx.eval(ext.rms_norm(mx.ones((2, 8)), None, 1e-5, lambda *a: None, mx.default_stream(mx.cpu)))
    except TypeError as e:
        out["call_error"] = str(e).splitlines()[0]
print(json.dumps(out))
"""


class Report:
    def __init__(self) -> None:
        self.problems = 0

    def ok(self, what: str) -> None:
        print(f"  ok    {what}")

    def note(self, what: str) -> None:
        print(f"  note  {what}")

    def fail(self, what: str, fix: str) -> None:
        self.problems += 1
        print(f"  FAIL  {what}\n        fix: {fix}")


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check MLX, the extension, ABI, devices and kernels",
                              description=__doc__)
    p.add_argument("--no-probe", action="store_true", help="do not run each fused kernel once")
    p.set_defaults(func=run)


def pinned_mlx() -> str | None:
    """The MLX version this package pins for this platform, from its installed metadata."""
    try:
        requires = metadata.requires("mlxr-conform") or []
    except metadata.PackageNotFoundError:
        return None
    platform = "darwin" if sys.platform == "darwin" else "linux"
    for req in requires:
        m = re.match(r"mlx(\[\w+\])?\s*==\s*([\w.]+)\s*;\s*sys_platform\s*==\s*['\"](\w+)['\"]", req)
        if m and m.group(3) == platform:
            return m.group(2)
    return None


def run(args) -> int:
    r = Report()
    print("mlxr-conform doctor")
    mx = check_mlx(r)
    if mx is None:
        return 1
    ext = check_extension(r, mx)
    if ext is not None:
        check_devices(r, mx, ext)
        check_isa(r, ext)
        check_kernels(r, mx, probe=not args.no_probe)
    print(f"\n{r.problems} problem(s)" if r.problems else "\nno problems found")
    return 1 if r.problems else 0


def check_mlx(r: Report):
    try:
        import mlx.core as mx
    except ImportError as error:
        r.fail(f"mlx.core does not import ({error})", "pip install 'mlx[cpu]==0.32.4' (Linux) or 'mlx==0.32.4' (macOS)")
        return None
    pin = pinned_mlx()
    what = f"MLX {mx.__version__} at {Path(mx.__file__).parent}"
    if pin and mx.__version__ != pin:
        r.fail(f"{what}, but mlxr-conform pins {pin}",
               f"pip install 'mlx[cpu]=={pin}' (or mlx=={pin} on macOS), then {REBUILD}")
    else:
        r.ok(what + (f" (the pinned version)" if pin else ""))
    return mx


def check_extension(r: Report, mx):
    probe = subprocess.run([sys.executable, "-c", _ABI_PROBE], capture_output=True, text=True, timeout=120)
    if probe.returncode:
        r.fail(f"the ABI probe crashed (exit {probe.returncode}): {probe.stderr.strip()[-300:]}", REBUILD)
        return None
    facts = json.loads(probe.stdout.strip().splitlines()[-1])
    if "import_error" in facts:
        error = facts["import_error"]
        fix = (f"the extension was built against another MLX: {REBUILD}" if "undefined symbol" in error
               else f"build it: pip install --no-build-isolation -e . (from the project root)")
        r.fail(f"mlxr._ext does not load: {error}", fix)
        return None
    import mlxr._ext as ext

    built = getattr(ext, "mlx_version", None)
    where = f"mlxr._ext loads ({facts['ext_file']}); built against MLX {built or '?'} ({ext.mlx_backend} build)"
    if built and built != mx.__version__:
        r.fail(f"{where}, but MLX {mx.__version__} is installed", REBUILD)
    else:
        r.ok(where)

    new_keys = sorted(set(facts["ext_keys"]) - set(facts["mlx_keys"]))
    mlx_keys = [k for k in facts["mlx_keys"] if k.endswith("_mlx__")]
    if new_keys:
        r.fail(f"nanobind ABI mismatch: mlx.core uses {mlx_keys}, mlxr._ext created {new_keys}",
               f"install nanobind==3.1.0 (the version mlx {mx.__version__} uses), then {REBUILD}")
    elif "call_error" in facts:
        r.fail(f"mlx.core arrays are not accepted by mlxr._ext: {facts['call_error']}",
               f"install nanobind==3.1.0, then {REBUILD}")
    else:
        abi = mlx_keys[0].removeprefix("__nb_internals_").removesuffix("__") if mlx_keys else "?"
        r.ok(f"nanobind ABI: mlxr._ext shares mlx.core's domain ({abi}) and accepts mx.array")

    if ext.gpu_kernels == "metal":
        libs = sorted(p.name for p in Path(ext.__file__).parent.glob("*.metallib"))
        if libs:
            r.ok(f"Metal library {', '.join(libs)} next to the extension")
        else:
            r.fail(f"no .metallib next to {ext.__file__}: Metal kernels cannot load", REBUILD)
    return ext


def check_devices(r: Report, mx, ext) -> None:
    gpu = mx.is_available(mx.Device(mx.gpu))
    runtime = "metal" if mx.metal.is_available() else "cuda" if hasattr(mx, "cuda") and mx.cuda.is_available() else None
    r.ok(f"devices: cpu{', gpu (' + runtime + ')' if gpu else '; no gpu in this MLX build or machine'}"
         f"; default {mx.default_device()}")
    if runtime and ext.mlx_backend != runtime:
        r.fail(f"MLX runs on {runtime} but mlxr._ext was built against a {ext.mlx_backend} MLX", REBUILD)
    elif gpu and ext.gpu_kernels == "none":
        r.note(f"no GPU kernels compiled: fused ops run their reference on the GPU")
    elif not gpu and ext.mlx_backend in ("cuda", "metal"):
        r.note(f"the extension has {ext.mlx_backend} support but no GPU is visible: only CPU kernels run")


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def check_isa(r: Report, ext) -> None:
    active, cap = ext.cpu_isa(), os.environ.get("MLXR_CPU_ISA")
    flags = _cpu_flags()
    best = None
    if flags:
        avx2 = {"avx2", "fma", "f16c"} <= flags
        best = "avx512" if avx2 and {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags else (
            "avx2" if avx2 else "baseline")
    what = f"CPU ISA in use: {active}" + (f" (capped by MLXR_CPU_ISA={cap})" if cap else "")
    if best and best != active and not cap:
        r.fail(f"{what}, but this CPU supports {best}",
               "the kernels were built without x86 dispatch: rebuild with GCC/Clang on x86-64")
    else:
        r.ok(what + (f"; CPU supports {best}" if best else ""))


def check_kernels(r: Report, mx, probe: bool) -> None:
    from ... import fused
    from ...fused import _dispatch
    from .. import bench
    from ._options import dtype_name

    ops = sorted(set(_dispatch.CPU_KERNEL_DTYPES) | set(_dispatch.GPU_KERNEL_DTYPES))
    without = sorted(n for n in fused.__all__ if n not in ops and n not in ("Observation", "has_kernel", "observe"))
    for op in ops:
        cpu = ",".join(dtype_name(d) for d in _dispatch.CPU_KERNEL_DTYPES.get(op, ())) or "-"
        gpu = ",".join(dtype_name(d) for d in _dispatch.GPU_KERNEL_DTYPES.get(op, ())) or "-"
        r.ok(f"fused {op}: cpu [{cpu}]  gpu [{gpu}]")
    if without:
        r.note(f"no fused kernel on any device (reference only): {', '.join(without)}")
    if not probe:
        return
    devices = [("cpu", _dispatch.CPU_KERNEL_DTYPES)]
    if mx.is_available(mx.Device(mx.gpu)):
        devices.append(("gpu", _dispatch.GPU_KERNEL_DTYPES))
    for op in ops:
        if op not in bench.available():
            r.note(f"{op}: no conformance/bench/{op}.py, so its kernels are not probed")
            continue
        case = bench.load(op)
        for device, table in devices:
            ran, missing = [], []
            for dtype in table.get(op, ()):
                kernel = f"{device}:{op}_{dtype_name(dtype)}"
                try:
                    stream = mx.default_stream(mx.Device(getattr(mx, device)))
                    with mx.stream(stream), fused.observe() as seen:
                        args = case.make_inputs(tuple(case.quick_shapes[0]), dtype)
                        mx.eval(case.columns()["fused"][1](*args))
                    (ran if kernel in seen.kernels else missing).append(
                        kernel if kernel in seen.kernels else f"{kernel} (ran: {sorted(seen.kernels) or 'none'})")
                except Exception as error:  # noqa: BLE001 - report every kernel, not the first failure
                    missing.append(f"{kernel} raised {type(error).__name__}: {str(error).splitlines()[0]}")
            if missing:
                r.fail(f"{op} on {device}: listed in fused/_dispatch.py but did not run: {'; '.join(missing)}",
                       f"fix the kernel or its row in fused/_dispatch.py, then {REBUILD}")
            elif ran:
                r.ok(f"{op} on {device}: ran {', '.join(k.split(':')[1] for k in ran)}")

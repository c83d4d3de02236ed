"""Turns a ``.metal`` file into a shared library the simulator runs (g++, cached by source hash).

Local ``#include "name.h"`` lines are inlined first (the kernel's directory, then the source
root: the metallib build's include path), so shared headers get the same treatment. The source
is compiled as C++ against ``runtime/msl.h`` after three textual rewrites that keep line numbers: ``device``/``constant`` pointers become bounds-checked ``msl_sim::dptr<T>``,
``threadgroup`` pointers ``msl_sim::tgptr<T>`` and ``threadgroup T name[N];`` a per-threadgroup,
race-checked allocation. Kernel signatures (``[[buffer(n)]]`` and position attributes) are read
from the preprocessed source to generate the glue that calls each ``[[host_name]]`` instance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

RUNTIME = Path(__file__).parent / "runtime"
CXX = os.environ.get("CXX", "g++")
# Hidden symbols and no STB_GNU_UNIQUE: each library keeps its own kernel table and statics,
# so a mutated copy of a kernel file cannot replace the real one in the process.
CXXFLAGS = ["-std=c++20", "-O1", "-fPIC", "-shared", "-Wno-attributes", "-fvisibility=hidden",
            "-fvisibility-inlines-hidden", "-fno-gnu-unique"]
POSITION_ATTRIBUTES = {
    "thread_position_in_grid",
    "threadgroup_position_in_grid",
    "thread_position_in_threadgroup",
    "threads_per_threadgroup",
    "threadgroups_per_grid",
    "threads_per_grid",
    "thread_index_in_threadgroup",
    "simdgroup_index_in_threadgroup",
    "thread_index_in_simdgroup",
    "simdgroups_per_threadgroup",
    "threads_per_simdgroup",
}


class MetalSimCompileError(RuntimeError):
    """The kernel source does not compile or uses MSL the simulator does not model."""


def source_root() -> Path:
    """The repository holding ``kernels/`` and ``csrc/`` (``MLXR_SOURCE_ROOT`` overrides)."""
    env = os.environ.get("MLXR_SOURCE_ROOT")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "kernels").is_dir():
        raise MetalSimCompileError(
            f"kernel sources not found under {root}; set MLXR_SOURCE_ROOT to the mlxr checkout"
        )
    return root


def cache_dir() -> Path:
    d = Path(os.environ.get("MLXR_METAL_SIM_CACHE", Path(tempfile.gettempdir()) / f"mlxr-metal-sim-{os.getuid()}"))
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------- source rewrites
_TYPE = r"[A-Za-z_][\w:]*(?:\s*<[^<>;]*>)?"
_POINTER = re.compile(rf"\b(const\s+)?(device|constant|threadgroup)\s+(const\s+)?({_TYPE})\s*\*")
_TG_ARRAY = re.compile(rf"\bthreadgroup\s+({_TYPE})\s+(\w+)\s*\[([^\]]+)\]\s*;")


def rewrite(source: str) -> str:
    """MSL address-space pointers and threadgroup arrays as simulator types (same line count)."""
    sites = iter(range(1, 1 << 30))
    source = _TG_ARRAY.sub(
        lambda m: f'auto {m[2]} = ::msl_sim::tg_array<{m[1]}, ({m[3]}), {next(sites)}>("{m[2]}");',
        source,
    )

    def pointer(m: re.Match) -> str:
        const = "const " if (m[1] or m[3]) else ""
        kind = "tgptr" if m[2] == "threadgroup" else "dptr"
        return f"::msl_sim::{kind}<{const}{m[4]}>"

    return _POINTER.sub(pointer, source)


_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.M)


def inline_includes(metal_file: Path, seen: set[Path] | None = None) -> str:
    """``metal_file``'s text with its local includes inlined (once each, as ``#pragma once``),
    ``#line`` directives keeping diagnostics on the right file and line."""
    metal_file = Path(metal_file).resolve()
    seen = set() if seen is None else seen
    seen.add(metal_file)
    source = metal_file.read_text()
    if seen - {metal_file}:  # a header: inlining is its include guard
        source = re.sub(r"^[ \t]*#[ \t]*pragma[ \t]+once[ \t]*$", "", source, flags=re.M)

    def include(m: re.Match) -> str:
        for d in (metal_file.parent, source_root()):
            header = (d / m[1]).resolve()
            if header.is_file():
                break
        else:
            raise MetalSimCompileError(f"{metal_file.name}: included file {m[1]} not found")
        line = source.count("\n", 0, m.end()) + 2  # the line after the #include
        body = "" if header in seen else inline_includes(header, seen)
        return f'#line 1 "{header}"\n{body}\n#line {line} "{metal_file}"'

    return _INCLUDE.sub(include, source)


# ---------------------------------------------------------------- signature parsing
@dataclasses.dataclass
class Param:
    position: int
    name: str
    buffer: int | None  # [[buffer(n)]]
    attribute: str | None  # a position attribute


@dataclasses.dataclass
class Kernel:
    host_name: str
    function: str  # e.g. rms_norm_single<float>
    params: list[Param]


_INSTANCE = re.compile(
    r'template\s*\[\[\s*host_name\(\s*((?:"[^"]*"\s*)+)\)\s*\]\]\s*\[\[\s*kernel\s*\]\]\s*'
    r"decltype\(\s*([^;]+?)\s*\)\s*[^;]+;"
)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "(<[{":
            depth += 1
        elif c in ")>]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _params(source: str, base_name: str) -> list[Param]:
    m = re.search(rf"\[\[\s*kernel\s*\]\]\s*void\s+{re.escape(base_name)}\s*\(", source)
    if not m:
        raise MetalSimCompileError(f"no [[kernel]] definition of {base_name}")
    depth, i = 1, m.end()
    while depth:
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        i += 1
    params = []
    for k, text in enumerate(_split_top_level(source[m.end() : i - 1])):
        attr = re.search(r"\[\[\s*(\w+)\s*(?:\(\s*(\d+)\s*\))?\s*\]\]\s*$", text)
        if not attr:
            raise MetalSimCompileError(f"{base_name}: parameter '{text}' has no attribute")
        name = re.findall(r"\w+", text[: attr.start()])[-1]
        if attr[1] == "buffer":
            params.append(Param(k, name, int(attr[2]), None))
        elif attr[1] in POSITION_ATTRIBUTES:
            params.append(Param(k, name, None, attr[1]))
        else:
            raise MetalSimCompileError(f"{base_name}: attribute [[{attr[1]}]] is not simulated")
    return params


def parse_kernels(preprocessed: str) -> list[Kernel]:
    """Every ``template [[host_name("...")]] [[kernel]]`` instance and plain ``[[kernel]]``
    function, with its signature."""
    kernels = []
    for m in _INSTANCE.finditer(preprocessed):
        function = m[2]
        base = function.split("<")[0].strip()
        host_name = "".join(re.findall(r'"([^"]*)"', m[1]))  # adjacent literals concatenate
        kernels.append(Kernel(host_name, function, _params(preprocessed, base)))
    # Plain (non-template) kernels are called by their own name.
    for m in re.finditer(r"\[\[\s*kernel\s*\]\]\s*void\s+(\w+)\s*\(", preprocessed):
        if not preprocessed[: m.start()].rstrip().endswith(">"):
            kernels.append(Kernel(m[1], m[1], _params(preprocessed, m[1])))
    if not kernels:
        raise MetalSimCompileError("no [[kernel]] functions found")
    return kernels


def glue(kernels: list[Kernel]) -> str:
    """C++ that calls each kernel instance with its bound buffers and thread positions."""
    out = []
    for i, k in enumerate(kernels):
        args = []
        for p in k.params:
            t = f"::msl_sim::param_t<F, {p.position}>"
            if p.buffer is not None:
                args.append(f'::msl_sim::bind_buffer<{t}>(d, {p.buffer}, "{p.name}")')
            else:
                args.append(
                    f"::msl_sim::as_param<{t}>(::msl_sim::position(d, l, ::msl_sim::Attr::{p.attribute}))"
                )
        body = ",\n      ".join(args)
        out.append(
            f"static void msl_sim_thread_{i}(::msl_sim::Dispatch& d, ::msl_sim::Lane& l) {{\n"
            f"  using F = decltype({k.function});\n  (void)l;\n"
            f"  {k.function}(\n      {body});\n}}\n"
            f'static ::msl_sim::Register msl_sim_register_{i}("{k.host_name}", msl_sim_thread_{i});\n'
        )
    return "\n".join(out)


# ---------------------------------------------------------------- compilation
def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise MetalSimCompileError(f"{' '.join(cmd[:3])} ... failed:\n{r.stderr[-6000:]}")
    return r.stdout


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def _runtime_text() -> str:
    return "".join((RUNTIME / f).read_text() for f in ("msl.h", "scheduler.h", "include/metal_stdlib"))


def compile_metal(metal_file: Path) -> tuple[Path, list[Kernel]]:
    """The simulator library for ``metal_file`` (built once per source hash) and its kernels."""
    metal_file = Path(metal_file)
    source = inline_includes(metal_file)
    digest = _digest(source, _runtime_text(), CXX, *CXXFLAGS, Path(__file__).read_text())
    out = cache_dir() / f"{metal_file.stem}-{digest}.so"
    signatures = out.with_suffix(".json")
    if out.exists() and signatures.exists():
        raw = json.loads(signatures.read_text())
        return out, [Kernel(k["host_name"], k["function"], [Param(**p) for p in k["params"]]) for k in raw]
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir()))
    try:
        return _build(metal_file, rewrite(source), out, signatures, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(metal_file: Path, rewritten: str, out: Path, signatures: Path, work: Path):
    src = work / f"{metal_file.stem}.metal.cpp"
    src.write_text(
        f'#include "{RUNTIME / "msl.h"}"\n#line 1 "{metal_file}"\n{rewritten}\n'
    )
    preprocessed = _run([CXX, "-std=c++20", "-E", "-P", f"-I{RUNTIME / 'include'}", str(src)])
    kernels = parse_kernels(preprocessed)
    if not out.exists():
        src.write_text(src.read_text() + "\n// ---- generated glue\n" + glue(kernels))
        tmp = work / out.name
        _run([CXX, *CXXFLAGS, f"-I{RUNTIME / 'include'}", str(src), "-o", str(tmp)])
        os.replace(tmp, out)  # atomic: parallel test workers may build the same library
    tmp_json = work / signatures.name
    tmp_json.write_text(json.dumps([dataclasses.asdict(k) for k in kernels]))
    os.replace(tmp_json, signatures)
    return out, kernels


def compile_plans(root: Path) -> Path:
    """The launch plans of csrc/metal/launch/*.h, callable through ctypes (runtime/plans.cpp)."""
    headers = sorted((root / "csrc" / "metal" / "launch").glob("*.h"))
    plans_cpp = RUNTIME / "plans.cpp"
    digest = _digest(plans_cpp.read_text(), *(h.read_text() for h in headers), CXX, *CXXFLAGS)
    out = cache_dir() / f"plans-{digest}.so"
    if not out.exists():
        work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir()))
        try:
            _run([CXX, *CXXFLAGS, f"-I{root / 'csrc'}", str(plans_cpp), "-o", str(work / out.name)])
            os.replace(work / out.name, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out

"""``mlxr-conform new OP``: scaffold a new port, the same stem in every folder.

Writes reference/OP.py, fused/OP.py, csrc/OP.{h,cpp}, csrc/bindings/OP.cpp,
conformance/specs/OP.py, conformance/bench/OP.py and tests/test_OP.py from the templates in
``mlxr/conformance/cli/templates`` (shaped like rms_norm: ``OP(x, weight, eps)``), and registers
the op in csrc/bindings.cpp, fused/__init__.py and reference/__init__.py. The scaffold builds;
its tests fail with "not implemented" until the reference and the kernel are written. No
kernels/ files are written: they only exist once they carry a GPU kernel. Existing files are
never overwritten.
"""

from __future__ import annotations

import ast
import keyword
import re
import sys
from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")
# Target path (with __op__ for the op name) -> template file.
FILES = {
    "reference/__op__.py": "reference.py.tmpl",
    "fused/__op__.py": "fused.py.tmpl",
    "csrc/__op__.h": "csrc.h.tmpl",
    "csrc/__op__.cpp": "csrc.cpp.tmpl",
    "csrc/bindings/__op__.cpp": "binding.cpp.tmpl",
    "conformance/specs/__op__.py": "spec.py.tmpl",
    "conformance/bench/__op__.py": "bench.py.tmpl",
    "tests/test___op__.py": "test.py.tmpl",
}
NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# The op name is also a C++ function and a Python module: neither language's keywords.
CXX_KEYWORDS = set("""alignas alignof and and_eq asm auto bitand bitor bool break case catch char
char8_t char16_t char32_t class compl concept const consteval constexpr constinit const_cast
continue co_await co_return co_yield decltype default delete do double dynamic_cast else enum
explicit export extern false float for friend goto if inline int long mutable namespace new
noexcept not not_eq nullptr operator or or_eq private protected public register
reinterpret_cast requires return short signed sizeof static static_assert static_cast struct
switch template this thread_local throw true try typedef typeid typename union unsigned using
virtual void volatile wchar_t while xor xor_eq""".split())
# Names the package already uses for something else.
RESERVED = {"observe", "has_kernel", "main", "spec", "specs", "bench", "cli", "test", "conftest"}


def register(subparsers) -> None:
    p = subparsers.add_parser("new", help="scaffold a new op port (reference, fused, C++, spec, bench, test)",
                              description=__doc__)
    p.add_argument("op", metavar="OP", help="the op's name in snake_case, e.g. layer_norm")
    p.add_argument("--root", type=Path, help="project root to scaffold into (default: the one containing "
                                             "the current directory)")
    p.set_defaults(func=run)


def validate_name(op: str) -> str | None:
    """Why ``op`` cannot be an op name, or None if it can."""
    if not NAME.match(op):
        return f"{op!r} is not snake_case (lowercase letters, digits, single underscores; a letter first)"
    if keyword.iskeyword(op) or op in CXX_KEYWORDS:
        return f"{op!r} is a Python or C++ keyword"
    if op in RESERVED:
        return f"{op!r} is already used by the package"
    return None


def class_name(op: str) -> str:
    """layer_norm -> LayerNorm (the primitive's C++ class)."""
    return "".join(part.capitalize() for part in op.split("_"))


def render(template: str, op: str) -> str:
    text = (TEMPLATES / template).read_text()
    return (text.replace("__Class__", class_name(op)).replace("__Title__", op.replace("_", " ").capitalize())
            .replace("__op__", op))


def find_root(start: Path) -> Path | None:
    for d in [start, *start.parents]:
        if (d / "pyproject.toml").is_file() and (d / "csrc" / "bindings.cpp").is_file():
            return d
    return None


def run(args) -> int:
    op = args.op
    problem = validate_name(op)
    if problem:
        print(f"mlxr-conform new: {problem}", file=sys.stderr)
        return 2
    root = (args.root or find_root(Path.cwd()) or Path()).resolve()
    if not (root / "csrc" / "bindings.cpp").is_file():
        print(f"mlxr-conform new: {root} is not an mlxr-conform checkout (no csrc/bindings.cpp); "
              "run it from the project root or pass --root", file=sys.stderr)
        return 2

    targets = {root / path.replace("__op__", op): template for path, template in FILES.items()}
    existing = [str(p.relative_to(root)) for p in targets if p.exists()]
    if existing:
        print(f"mlxr-conform new: {op} exists already, not overwriting: {', '.join(existing)}", file=sys.stderr)
        return 1
    try:
        edits = {
            root / "csrc/bindings.cpp": register_binding((root / "csrc/bindings.cpp").read_text(), op),
            root / "fused/__init__.py": register_export((root / "fused/__init__.py").read_text(), op),
            root / "reference/__init__.py": register_export((root / "reference/__init__.py").read_text(), op),
        }
    except ValueError as error:
        print(f"mlxr-conform new: {error}", file=sys.stderr)
        return 1

    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, op))
        print(f"  created  {path.relative_to(root)}")
    for path, text in edits.items():
        path.write_text(text)
        print(f"  edited   {path.relative_to(root)}")
    print(NEXT_STEPS.replace("__Class__", class_name(op)).replace("__op__", op))
    return 0


NEXT_STEPS = """
Next (test-driven: `pytest tests/test___op__.py` fails with "not implemented" until each is done):
  1. reference/__op__.py: the formula in plain MLX, with its dtype rules in the docstring.
  2. csrc/__op__.cpp: __Class__::eval_cpu (model: csrc/rms_norm.cpp), then rebuild:
     pip install --no-build-isolation -e .
  3. fused/_dispatch.py: add "__op__": (mx.float32, mx.float16, mx.bfloat16, mx.float64) to
     CPU_KERNEL_DTYPES (until then the fused op runs the reference).
  4. Fix the arguments if they are not (x, weight, eps): reference, fused, csrc, bindings, spec,
     bench and test all follow rms_norm's; then the TODO(__op__) marks.
  5. Certify and measure: pytest conformance/ --op __op__; mlxr-conform bench __op__
  6. GPU: kernels/__op__.{metal,cuh} with their host code in csrc/metal, csrc/cuda.
"""


def register_binding(text: str, op: str) -> str:
    """csrc/bindings.cpp with ``bind_<op>`` declared and called after the last existing one."""
    decls = list(re.finditer(r"^void bind_(\w+)\(nb::module_& m\);\n", text, re.M))
    calls = list(re.finditer(r"^([ \t]*)mlxr::bind_(\w+)\(m\);\n", text, re.M))
    if not decls or not calls:
        raise ValueError("csrc/bindings.cpp: no `void bind_<op>(nb::module_& m);` / `mlxr::bind_<op>(m);` "
                         "lines to extend; add bind_" + op + " by hand")
    if op in {m.group(1) for m in decls}:
        raise ValueError(f"csrc/bindings.cpp already registers bind_{op}")
    call = calls[-1]
    text = text[:call.end()] + f"{call.group(1)}mlxr::bind_{op}(m);\n" + text[call.end():]
    decl = decls[-1]
    return text[:decl.end()] + f"void bind_{op}(nb::module_& m);\n" + text[decl.end():]


def register_export(text: str, op: str) -> str:
    """A package ``__init__.py`` that also imports and exports ``op`` from ``.<op>``, in
    alphabetical place and in the layout (one line or one name a line) ``__all__`` had."""
    imports = list(re.finditer(r"^from \.(\w+) import .*\n", text, re.M))
    listing = re.search(r"^__all__ = (\[.*?\])\n", text, re.M | re.S)
    if not imports or not listing:
        raise ValueError("an __init__.py has no `from .<op> import <op>` / `__all__` to extend")
    names = ast.literal_eval(listing.group(1))
    if op in names:
        raise ValueError(f"{op} is already exported by an __init__.py")
    names = sorted([*names, op])
    rendered = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]"
    if "\n" in listing.group(1) or len(rendered) > 100:
        rendered = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]"
    text = text[:listing.start()] + rendered + "\n" + text[listing.end():]
    after = [m for m in imports if not m.group(1).startswith("_") and m.group(1) > op]
    at = after[0].start() if after else imports[-1].end()
    return text[:at] + f"from .{op} import {op}\n" + text[at:]

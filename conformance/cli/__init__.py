"""The ``mlxr-conform`` command line: ``bench``, ``doctor``, ``new``, ``report``, ``certify``.

Each subcommand is one module ``mlxr.conformance.cli.<name>`` exposing ``register(subparsers)``
(adds its parser and sets ``func=run``) and ``run(args) -> int``. Modules are imported one by
one, so a subcommand that fails to import reports its own error and leaves the others usable.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("report", "certify", "bench", "doctor", "new")


def _unavailable(name: str, error: BaseException):
    def run(args) -> int:
        print(f"mlxr-conform {name}: unavailable, its module failed to import: {error!r}", file=sys.stderr)
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per importable subcommand module."""
    parser = argparse.ArgumentParser(
        prog="mlxr-conform", description="Conformance suite and porting kit for fused MLX ops.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except Exception as error:  # noqa: BLE001 - a broken subcommand must not break the others
            missing = isinstance(error, ModuleNotFoundError) and error.name == f"{__name__}.{name}"
            why = "not in this checkout" if missing else f"{type(error).__name__} on import"
            sub = subparsers.add_parser(name, help=f"(unavailable: {why})")
            sub.set_defaults(func=_unavailable(name, error))
            sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mlxr-conform`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)

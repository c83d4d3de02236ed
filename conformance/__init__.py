"""Conformance engine: certifies an implementation of an op against its float64 oracle.

- ``spec`` / ``specs/<op>.py``: one declarative ``OpSpec`` per op (auto-discovered);
- ``strategies`` / ``layouts`` / ``numerics``: hypothesis inputs, asserted memory layouts,
  oracle arbitration and error metrics;
- ``checks/``: the checks, one module per concern; ``test_*.py``: the generic pytest templates;
- ``plugin`` (pytest11 entry point): ``--profile``, ``--candidate``, ``--device``, ``--op``,
  ``--results``; ``results``: the JSON results file; ``cli/report``, ``cli/certify``.

Run: ``pytest conformance/ -n auto`` (certifies every spec's fused port on every device).
Importing this package has no side effects.
"""

"""Shared steps: run the candidate, the reference and the oracle on one sample and judge."""

from __future__ import annotations


def forward(case, sample, inputs=None, what: str = "output"):
    """Candidate vs oracle, arbitrated by the reference; returns the candidate's output."""
    inputs = inputs or case.materialize(sample)
    out = case.candidate(inputs.args)
    case.judge(out, case.reference(inputs.plain), case.oracle(inputs.oracle), sample, what,
               magnitude=case.magnitude(inputs.oracle))
    return out


def dtypes_for(spec, device):
    return spec.dtypes.get(device, ())

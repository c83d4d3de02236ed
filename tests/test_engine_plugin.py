"""Plugin behaviour end to end: an op not ported yet is reported "not run: not implemented"
(never a crash, never a pass), an XFail that passes is a failure (XPASS), and certify's exit
code follows the verdict. Out-of-tree specs (--spec) are written to tmp_path."""

import argparse
import textwrap

from _engine import outcomes, run_suite
from mlxr.conformance.results import FAILED, NOT_RUN, groups, verdict

SPEC_NOT_PORTED = """
import dataclasses
from mlxr.conformance.specs.rms_norm import SPEC as RMS
SPEC = dataclasses.replace(RMS, name="not_ported", fused="mlxr.fused:not_ported", native=None)
"""
SPEC_XPASS = """
import dataclasses
from mlxr.conformance.spec import XFail
from mlxr.conformance.specs.rms_norm import SPEC as RMS
SPEC = dataclasses.replace(RMS, name="xpass_op", xfails=(XFail("planted: declared broken but is not", check="forward"),))
"""


def _write(tmp_path, name, source):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))


def test_not_implemented_is_reported_not_run(tmp_path):
    _write(tmp_path, "not_ported", SPEC_NOT_PORTED)
    code, document = run_suite(tmp_path, "--spec", "not_ported", "--op", "not_ported", "-k", "test_forward or test_errors")
    assert code == 0  # collection did not crash
    records = document["results"]
    assert records and all(r["outcome"] == "not-run" and "not implemented" in r["reason"] for r in records)
    assert {verdict(v) for v in groups(document).values()} == {NOT_RUN}


def test_unexpected_pass_is_a_failure(tmp_path):
    _write(tmp_path, "xpass_op", SPEC_XPASS)
    code, document = run_suite(tmp_path, "--spec", "xpass_op", "--op", "xpass_op", "--candidate", "xpass_op=reference",
                               "-k", "test_forward and cpu-float32")
    assert code == 1
    assert set(outcomes(document).values()) == {"xpass"}
    assert {verdict(v) for v in groups(document).values()} == {FAILED}


def test_certify_exit_code_follows_the_verdict(tmp_path, monkeypatch, capsys):
    from mlxr.conformance.cli import certify

    _write(tmp_path, "not_ported", SPEC_NOT_PORTED)
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    certify.register(parser.add_subparsers())
    args = parser.parse_args(["certify", "not_ported", "--spec", "not_ported", "--results", str(tmp_path / "r.json")])
    assert args.func(args) == 1
    assert "NOT CERTIFIED" in capsys.readouterr().out
    args = parser.parse_args(["certify", "no_such_op"])
    assert args.func(args) == 2


def test_unavailable_device_is_not_run_never_passed(tmp_path):
    import mlx.core as mx

    if mx.is_available(mx.gpu):
        code, document = run_suite(tmp_path, "--device", "gpu", "--op", "rms_norm", "-k", "test_errors")
        assert {r["device"] for r in document["results"]} == {"gpu"}
        return
    code, document = run_suite(tmp_path, "--device", "gpu", "--op", "rms_norm", "-k", "test_errors or test_forward")
    records = document["results"]
    assert records and all(r["outcome"] == "not-run" and "not available" in r["reason"] for r in records)
    assert document["devices"] == ["gpu"]

"""The mlxr-conform entry point: a subcommand that fails to import only disables itself."""

import subprocess
import sys

import pytest

import mlxr.conformance.cli as cli


def test_broken_subcommand_is_isolated(monkeypatch, capsys):
    monkeypatch.setattr(cli, "SUBCOMMANDS", ("no_such_command", *cli.SUBCOMMANDS))
    assert cli.main(["no_such_command"]) == 2
    assert "no_such_command: unavailable" in capsys.readouterr().err
    assert cli.main(["new", "Bad-Name"]) == 2  # the others still parse and run


def test_help_lists_subcommands():
    proc = subprocess.run([sys.executable, "-m", "mlxr.conformance.cli", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    for name in ("bench", "doctor", "new", "report", "certify"):
        assert name in proc.stdout


def test_no_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2

"""pytest plugin of the conformance engine (entry point ``pytest11: mlxr_conformance``).

Options: ``--profile ci|thorough``, ``--candidate OP=MODULE:ATTR`` (repeatable; also
``OP=fused|native|reference``), ``--device all|cpu|gpu|metal-sim`` (metal-sim: the Metal kernels on
the CPU simulator, see ``mlxr.conformance.devices``), ``--op NAME`` (repeatable),
``--results FILE`` (default ``results/conformance.json``, written only when conformance tests ran).

Tests marked ``@pytest.mark.mlxr_check("<check>")`` taking a ``case`` argument are parametrized
over specs × implementations × devices × dtype cases × the check's variants. Each test's report
carries its record (``user_properties``), so xdist workers need no files: the controller merges
and writes one JSON results file (schema in ``mlxr.conformance.results``).

Nothing is imported at load time beyond pytest and the standard library.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time

import pytest

_PROPERTY = "mlxr"
# Skip reasons starting so are recorded as outcome "not-applicable" (never passed, never owed).
NOT_APPLICABLE = "not applicable"


def pytest_addoption(parser):
    group = parser.getgroup("mlxr-conformance", "mlxr conformance engine")
    group.addoption("--profile", choices=("ci", "thorough"), default="ci",
                    help="hypothesis profile of the conformance checks (default: ci)")
    group.addoption("--candidate", action="append", default=[], metavar="OP=MODULE:ATTR",
                    help="certify this implementation of OP instead of its fused port (repeatable)")
    group.addoption("--device", choices=("all", "cpu", "gpu", "metal-sim"), default="all",
                    help="devices to certify on (default: every available one; metal-sim: the Metal "
                         "kernels on the CPU simulator, where g++ is present)")
    group.addoption("--op", action="append", default=[], metavar="NAME",
                    help="only these ops (repeatable; default: every spec)")
    group.addoption("--spec", action="append", default=[], metavar="MODULE",
                    help="also load the OpSpec of this module (an out-of-tree op; repeatable)")
    group.addoption("--results", default=None, metavar="FILE",
                    help="conformance results JSON (default: results/conformance.json)")


def pytest_configure(config):
    config.addinivalue_line("markers", "mlxr_check(name): a generic conformance check template")
    config._mlxr_records = {}
    config._mlxr_started = time.time()


# ---------------------------------------------------------------------------- collection
def _candidates(config) -> dict[str, list[str]]:
    """OP -> implementations to certify (several --candidate for one op are all certified)."""
    out: dict[str, list[str]] = {}
    for entry in config.getoption("candidate"):
        op, sep, target = entry.partition("=")
        if not sep or not target:
            raise pytest.UsageError(f"--candidate wants OP=MODULE:ATTR, got {entry!r}")
        out.setdefault(op.strip(), []).append(target.strip())
    return out


def _devices(config) -> list[tuple[str, bool, str]]:
    """(device, available, why not) of each device to certify on."""
    from .devices import DEVICES, available

    choice = config.getoption("device")
    if choice == "all":
        return [(d, True, "") for d in DEVICES if available(d)[0]]
    return [(choice, *available(choice))]


def _safe_id(text: str) -> str:
    return text.replace("=", "_").replace(",", "+")


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("mlxr_check")
    if marker is None or "case" not in metafunc.fixturenames:
        return
    from . import checks
    from .specs import all_specs

    config = metafunc.config
    check = checks.get(marker.args[0])
    wanted_ops = set(config.getoption("op"))
    candidates = _candidates(config)
    specs = all_specs(tuple(config.getoption("spec")))
    unknown = (set(candidates) | wanted_ops) - set(specs)
    if unknown:
        raise pytest.UsageError(f"unknown op(s) {sorted(unknown)}; specs: {sorted(specs)}")
    params = []
    for spec in specs.values():
        if wanted_ops and spec.name not in wanted_ops:
            continue
        for wanted in candidates.get(spec.name, ["fused"]):
            target = spec.target(wanted)
            if target is None:
                raise pytest.UsageError(f"{spec.name} has no {wanted} implementation")
            params += _params(config, check, spec, target)
    metafunc.parametrize("case", params)


def _params(config, check, spec, requested):
    from . import devices
    from .case import Case, CheckFailure

    impl = spec.label(requested)
    # Test ids name external candidates by their attribute, so several can run side by side.
    name = impl if impl != "candidate" else requested.rpartition(":")[2]
    params = []
    for device, available, why in _devices(config):
        target = devices.target(spec, device, requested)
        if target is None:  # e.g. the reference on metal-sim: no kernel to certify
            continue
        case_spec = spec
        if device == devices.METAL_SIM:
            case_spec = dataclasses.replace(spec, max_elements=min(spec.max_elements, devices.METAL_SIM_MAX_ELEMENTS))
        for dtype in devices.dtypes(spec, device):
            for variant in check.variants(spec, impl, device, dtype):
                case = Case(case_spec, impl, target, device, dtype, check.NAME, variant, config.getoption("profile"),
                            spec_modules=tuple(config.getoption("spec")))
                marks = []
                reason = spec.xfail_reason(check.NAME, impl, target, device, dtype, variant)
                inapplicable = devices.not_applicable(device, check.NAME, variant)
                if inapplicable:
                    marks.append(pytest.mark.skip(reason=f"{NOT_APPLICABLE} on {device}: {inapplicable}"))
                elif reason:
                    case.expected_failure = True
                    marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=CheckFailure))
                if not available:
                    marks.append(pytest.mark.skip(reason=f"not run: {why}"))
                parts = [spec.name, name, device, _safe_id(dtype)] + ([variant] if variant else [])
                params.append(pytest.param(case, id="-".join(parts), marks=marks))
    return params


# ---------------------------------------------------------------------------- recording
def _check_failure(exc):
    from .case import CheckFailure

    if isinstance(exc, CheckFailure):
        return exc
    for inner in getattr(exc, "exceptions", ()):  # ExceptionGroup from hypothesis
        found = _check_failure(inner)
        if found is not None:
            return found
    cause = exc.__cause__ or exc.__context__
    return _check_failure(cause) if cause is not None and cause is not exc else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    case = getattr(item, "callspec", None) and item.callspec.params.get("case")
    if case is None or not hasattr(case, "record") or not (report.when == "call" or report.skipped or report.failed):
        return
    record = case.record
    data = {
        **case.identity(),
        "layout": (case.variant.split(":")[1] if case.check == "layouts" else
                   "any" if case.check == "purity" or (case.check, case.variant) == ("fused_path", "eager")
                   else "contiguous"),
        "examples": record.examples,
        "errors": record.errors.as_dict() if record.measured else None,
        "xfail": next((m.kwargs.get("reason") for m in item.iter_markers("xfail")), None),
        "when": report.when,
    }
    if call.excinfo is not None:
        failure = _check_failure(call.excinfo.value)
        if failure is not None:
            data["failure"] = {"message": failure.reason, "example": failure.example, "repro": failure.repro}
        else:
            data["failure"] = {"message": f"{call.excinfo.type.__name__}: {call.excinfo.value}"[:2000],
                               "example": None, "repro": None}
    from .results import clean

    report.user_properties = list(report.user_properties) + [(_PROPERTY, clean(data))]


def _outcome(report, data) -> tuple[str, str | None]:
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return "xfail", data.get("xfail")
        longrepr = report.longrepr
        reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
        return ("not-applicable" if reason.startswith(NOT_APPLICABLE) else "not-run"), reason
    if report.failed:
        if data.get("xfail") and report.when == "call" and "XPASS" in (report.longreprtext or ""):
            return "xpass", f"unexpectedly passed; declared: {data['xfail']}"
        return "failed", None
    return "passed", None


def _identity_from_nodeid(config, nodeid: str) -> dict | None:
    """Identity of a test whose report carries no record (its xdist worker crashed)."""
    from .checks import CHECKS
    from .specs import all_specs

    name, _, params = nodeid.partition("[")
    check = name.rpartition("::test_")[2]
    # The device id "metal-sim" holds the separator: protect it while splitting.
    parts = params.rstrip("]").replace("-metal-sim-", "-metal_sim-", 1).split("-", 4)
    if check not in CHECKS or len(parts) < 4:
        return None
    op, impl_id, device, dtype_id = parts[:4]
    device = device.replace("metal_sim", "metal-sim")
    spec = all_specs(tuple(config.getoption("spec"))).get(op)
    if spec is None:
        return None
    from .devices import dtypes, target as device_target

    dtype = next((d for d in dtypes(spec, device) if _safe_id(d) == dtype_id), dtype_id)
    target = spec.target(impl_id) or next((t for t in _candidates(config).get(op, []) if t.endswith(f":{impl_id}")), impl_id)
    target = device_target(spec, device, target) or target
    return {"op": op, "impl": impl_id if spec.target(impl_id) != impl_id else spec.label(target), "target": target, "device": device,
            "dtype": dtype, "check": check, "variant": parts[4] if len(parts) > 4 else None,
            "layout": None, "examples": None, "errors": None,
            "failure": {"message": f"the test process crashed; rerun alone: pytest '{nodeid}' -p no:xdist",
                        "example": None, "repro": None}}


def pytest_runtest_logreport(report):
    config = _CONFIG.get("config")
    if config is None:
        return
    data = next((v for k, v in report.user_properties if k == _PROPERTY), None)
    if data is None:
        # A crashed xdist worker's test comes back as a bare failed report: record it, never drop it.
        if not (report.failed and "[" in report.nodeid) or report.nodeid in config._mlxr_records:
            return
        data = _identity_from_nodeid(config, report.nodeid)
        if data is None:
            return
    records = config._mlxr_records
    outcome, reason = _outcome(report, data)
    previous = records.get(report.nodeid)
    if previous is not None and previous["outcome"] in ("failed", "xpass") and report.when == "teardown":
        return
    entry = {k: v for k, v in data.items() if k not in ("xfail", "when")}
    entry.update(nodeid=report.nodeid, outcome=outcome, reason=reason, duration_s=round(report.duration, 3))
    entry.setdefault("failure", None)
    if previous is None or report.when != "teardown" or outcome == "failed":
        records[report.nodeid] = entry


_CONFIG: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _CONFIG["config"] = session.config


# ---------------------------------------------------------------------------- writing
def _git(path: str) -> dict:
    def run(*args):
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10)

    try:
        commit = run("rev-parse", "HEAD")
        if commit.returncode:
            return {"commit": None, "dirty": None}
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _source_commit(package_dir: str, invocation_dir: str) -> dict:
    """The commit of the package's checkout (editable install), else of the directory pytest ran
    in (an installed wheel, e.g. CI running a clean clone's tests), else the one the runner
    names in MLXR_SOURCE_COMMIT (a copy of the tree without .git, e.g. on a lent GPU machine;
    whether that copy was clean is then unknown), saying which."""
    found = _git(package_dir)
    if found["commit"]:
        return {**found, "from": "package"}
    found = _git(invocation_dir)
    if found["commit"]:
        return {**found, "from": "invocation directory"}
    named = os.environ.get("MLXR_SOURCE_COMMIT", "").strip()
    if named:
        return {"commit": named, "dirty": None, "from": "MLXR_SOURCE_COMMIT"}
    return {**found, "from": None}


def metadata(config) -> dict:
    """Everything the results file says about where and how it was produced."""
    import mlx.core as mx

    import mlxr

    from .devices import kernels
    from .profiles import PROFILES

    try:
        from mlxr import _ext

        build, isa = _ext.mlx_backend, _ext.cpu_isa()
    except ImportError:
        build, isa = None, None
    profile = config.getoption("profile")
    choice = config.getoption("device")
    return {
        "command": [os.path.basename(sys.argv[0])] + list(config.invocation_params.args),
        "machine": {"node": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
                    "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version()},
        "mlx": {"version": mx.__version__, "build": build, "cpu_isa": isa, "gpu_available": mx.is_available(mx.gpu)},
        "device_info": _device_info(),
        "git": _source_commit(os.path.dirname(os.path.abspath(mlxr.__file__)), str(config.invocation_params.dir)),
        "hypothesis": {"profile": profile, **PROFILES[profile]},
        "devices": [d for d, *_ in _devices(config)] if choice == "all" else [choice],
        "kernels": kernels(),
    }


def _device_info() -> dict:
    """MLX's description of each device (names the GPU a GPU column was measured on)."""
    import mlx.core as mx

    out = {}
    for name, device in (("cpu", mx.cpu), ("gpu", mx.gpu)):
        try:
            if mx.is_available(device):
                out[name] = {k: v for k, v in mx.device_info(device).items() if isinstance(v, (str, int, float))}
        except (AttributeError, RuntimeError, ValueError):  # older MLX: no device_info
            pass
    return out


def results_path(config) -> str:
    from .results import DEFAULT_PATH

    return config.getoption("results") or os.path.join(str(config.invocation_params.dir), DEFAULT_PATH)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config, "_mlxr_records", None):
        return
    from datetime import datetime, timezone

    from .results import SCHEMA, write

    document = {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_s": round(time.time() - config._mlxr_started, 2), **metadata(config),
                "results": sorted(config._mlxr_records.values(), key=lambda r: r["nodeid"])}
    path = results_path(config)
    write(path, document)
    config._mlxr_written = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = getattr(config, "_mlxr_written", None)
    if path:
        import collections

        counts = collections.Counter(r["outcome"] for r in config._mlxr_records.values())
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"mlxr conformance: {summary}; results: {path}")

"""mlxr-conform bench: the results file, the timing statistics and the per-op case discovery."""

import dataclasses
import json
import subprocess
import sys

import mlx.core as mx
import pytest

from mlxr.conformance import bench as cases
from mlxr.conformance.bench import _timing
from mlxr.conformance.cli import _options, main
from mlxr.conformance.cli import bench as bench_cli

ENV_FIELDS = ("device", "mlx_version", "mlx_backend", "machine", "isa", "timestamp", "commit", "load_avg_1m")


def test_quick_bench_subprocess_writes_results(tmp_path):
    results = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mlxr.conformance.cli", "bench", "rms_norm", "--quick", "--dtype", "f32,bf16",
         "--results", str(results)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "fused %copy" in proc.stdout and "cpu:rms_norm_float32" in proc.stdout
    data = json.loads(results.read_text())
    assert data["schema"] == bench_cli.SCHEMA
    rows = data["rows"]
    quick = cases.load("rms_norm").quick_shapes
    assert len(rows) == len(quick) * 2 * 5  # shapes x dtypes x (fused, reference, mlx, copy, copy2)
    for row in rows:
        assert set(bench_cli.ROW_FIELDS + ENV_FIELDS) <= set(row)
        assert row["error"] is None and row["throughput"] > 0 and row["unit"] == "GB/s"
        assert row["throughput_q1"] <= row["throughput"] <= row["throughput_q3"]
        assert row["device"] == "cpu" and row["mlx_version"] == mx.__version__
    by = {(r["case"], r["dtype"], r["impl"]): r for r in rows}
    fused = by[("64x256", "float32", "fused")]
    assert fused["fused_kernel"] == "cpu:rms_norm_float32"
    copy_time = by[("64x256", "float32", "copy")]["time_median_s"]
    assert fused["pct_of_copy"] == pytest.approx(100 * copy_time / fused["time_median_s"])
    copy2_time = by[("64x256", "float32", "copy2")]["time_median_s"]
    assert fused["pct_of_copy2"] == pytest.approx(100 * copy2_time / fused["time_median_s"])
    ref_time = by[("64x256", "float32", "reference")]["time_median_s"]
    assert fused["speedup_vs_reference"] == pytest.approx(ref_time / fused["time_median_s"])
    assert by[("64x256", "bfloat16", "mlx")]["impl_name"] == "mx.fast.rms_norm"


def test_results_are_appended_and_foreign_files_refused(tmp_path):
    results = tmp_path / "r.json"
    bench_cli.append_results(results, [{"old": 1}])
    bench_cli.append_results(results, [{"new": 2}])
    assert json.loads(results.read_text()) == {"schema": bench_cli.SCHEMA, "rows": [{"old": 1}, {"new": 2}]}
    conformance = tmp_path / "conformance.json"
    conformance.write_text(json.dumps({"schema": "mlxr-conformance/1", "results": []}))
    with pytest.raises(SystemExit, match="not a mlxr-bench/1 results file"):
        bench_cli.append_results(conformance, [{"new": 2}])
    assert json.loads(conformance.read_text())["results"] == []


def test_sizes_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc = main(["bench", "rms_norm", "--sizes", "8x64,16x128", "--dtype", "float16", "--repeats", "2",
               "--plot", str(tmp_path / "plots"), "--results", str(tmp_path / "r.json")])
    assert rc == 0
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {r["case"] for r in rows} == {"8x64", "16x128"} and {r["dtype"] for r in rows} == {"float16"}
    png = tmp_path / "plots" / "rms_norm_cpu.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_unknown_op_and_bad_options(capsys):
    assert main(["bench", "no_such_op", "--quick", "--no-results"]) == 2
    assert "no bench case for no_such_op" in capsys.readouterr().err
    assert main(["bench", "rms_norm", "--dtype", "int7", "--no-results"]) == 2
    with pytest.raises(SystemExit):
        main(["bench", "--sizes", "4096xq"])


def test_option_parsers():
    assert _options.parse_shapes("4096x4096, 8192x4096") == [(4096, 4096), (8192, 4096)]
    assert _options.dtype_names(["f32,bf16", "float16", "f32"]) == ["float32", "bfloat16", "float16"]
    assert _options.dtype_names(None) is None
    with pytest.raises(Exception, match="dimensions must be positive"):
        _options.parse_shapes("0x4")


def test_every_bench_case_is_well_formed():
    assert "rms_norm" in cases.available()
    for op in cases.available():
        case = cases.load(op)
        assert case.shapes and case.quick_shapes and case.dtypes
        for shape in case.quick_shapes:
            dtype = getattr(mx, case.dtypes[0])
            args = case.make_inputs(tuple(shape), dtype)
            assert case.bytes_moved(tuple(shape), dtype) >= sum(a.nbytes for a in args if isinstance(a, mx.array))
        assert set(case.columns()) >= {"fused", "reference"}


def test_timing_batches_short_calls_and_orders_quartiles():
    x = mx.ones((16,))
    mx.eval(x)
    t = _timing.measure(mx.negative, (x,), mx.Device(mx.cpu), repeats=5, warmup=1, out_bytes=64)
    assert t.batch > 1  # a 16-element op is far below MIN_SAMPLE_S: calls are batched
    assert 0 < t.q1 <= t.median <= t.q3 and t.iqr >= 0 and t.repeats == 5


@pytest.mark.parametrize("graph_cache", [False, True])
def test_cuda_samples_are_primed_so_columns_do_not_share_a_cached_graph(monkeypatch, graph_cache):
    # Where MLX caches CUDA graphs, each timed sample of a column follows an untimed one of it.
    assert not _timing._graph_cache(mx.Device(mx.cpu))  # the CPU has no graph cache
    monkeypatch.setattr(_timing, "_graph_cache", lambda device: graph_cache)
    calls = {"a": 0, "b": 0}

    def counted(name):
        def fn(x):
            calls[name] += 1
            return -x
        return fn

    x = mx.ones((16,))
    timings = _timing.measure_all({n: (counted(n), (x,)) for n in calls}, mx.Device(mx.cpu), repeats=3,
                                  warmup=1, out_bytes=64)
    for name, t in timings.items():
        calibration = 1 + t.batch  # one warm-up call, one batch warming the allocator
        assert calls[name] == calibration + 3 * t.batch * (2 if graph_cache else 1)


def test_a_failing_column_is_reported_and_the_others_still_run():
    def not_ported(*args):
        raise NotImplementedError("[rms_norm] reference not implemented")

    case = dataclasses.replace(cases.load("rms_norm"), reference=not_ported)
    rows = bench_cli.bench_case(case, (4, 64), "float32", mx.Device(mx.cpu), "cpu", repeats=2, warmup=1)
    by = {r["impl"]: r for r in rows}
    assert by["reference"]["error"] == "NotImplementedError: [rms_norm] reference not implemented"
    assert by["reference"]["throughput"] is None and by["fused"]["speedup_vs_reference"] is None
    assert by["fused"]["error"] is None and by["fused"]["pct_of_copy"] > 0


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bench_cli, "_have_matplotlib", lambda: False)
    assert main(["bench", "rms_norm", "--quick", "--plot", str(tmp_path), "--no-results"]) == 2
    assert "pip install 'mlxr-conform[plot]'" in capsys.readouterr().err


def test_an_unported_op_reports_not_implemented_columns():
    case = dataclasses.replace(cases.load("rms_norm"), op="not_ported_yet")
    rows = bench_cli.bench_case(case, (4, 64), "float32", mx.Device(mx.cpu), "cpu", repeats=2, warmup=1)
    by = {r["impl"]: r for r in rows}
    assert by["fused"]["error"].startswith("NotImplementedError: mlxr.fused.not_ported_yet.not_ported_yet is not")
    assert by["reference"]["error"].startswith("NotImplementedError: mlxr.reference.not_ported_yet")
    assert by["copy"]["error"] is None and by["mlx"]["error"] is None

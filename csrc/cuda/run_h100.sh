#!/usr/bin/env bash
# One GPU-machine call: build mlxr against MLX-CUDA, run the CUDA tests of every op,
# compute-sanitizer (memcheck + racecheck) over each op's small run (sanitize.py <op>), each
# op's benchmark (bench_<op>.py), and the conformance suite on the GPU where it exists. Logs
# and tables go to $OUT. Run from the source root after `source .device/setup.sh env`:
#   bash csrc/cuda/run_h100.sh [build] [test] [sanitize] [bench] [conformance] [profile] [decode] [managed]
# OPS="rope softmax" limits test/sanitize/bench to those ops (default: every csrc/cuda/*.cu op),
# BENCH_OPS the benchmarks alone, SANITIZE_OPS the sanitizer runs alone; CONF_ARGS extra
# conformance options (e.g. "--op quantized_matmul"), CONF_WORKERS its pytest-xdist workers;
# PROFILE_OP picks profile_<op>.py for `profile`, PROFILE_REGEX the kernels ncu measures;
# MLXR_SOURCE_COMMIT=<sha> names the commit the copied tree is (it has no .git) in the results.
set -uo pipefail
src="$(pwd)"
# Logs go to $LOGS, packed into $OUT/logs.tar.gz after every stage (the device tool returns at
# most 8 files); the conformance results JSON is copied to $OUT as well.
OUT="${OUT:-/tmp/mlxr-out}"
LOGS="${LOGS:-/tmp/mlxr-logs}"
mkdir -p "$OUT" "$LOGS"
export CUDACXX="${CUDACXX:-/usr/local/cuda/bin/nvcc}"
export PYTHONPATH="/tmp/mlxr${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
stages="${*:-build test sanitize bench conformance}"
ops="${OPS:-$(cd "$src/csrc/cuda" && ls *.cu | sed 's/\.cu$//' | grep -v '^runtime$' | tr '\n' ' ')}"
echo "ops: $ops"
status=0
cd /tmp # the source tree has an mlxr/ folder without the built extension
for stage in $stages; do
  echo "=== $stage $(date +%T)"
  case "$stage" in
    build)
      nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
      rm -rf /tmp/mlxr
      start=$SECONDS
      if ! pip install --no-build-isolation --no-deps --no-index --target /tmp/mlxr -v "$src" \
          >"$LOGS/build.log" 2>&1; then
        grep -E "error|Error" "$LOGS/build.log" | head -40; tail -30 "$LOGS/build.log"
        tar czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null; exit 1
      fi
      echo "built in $((SECONDS - start)) s"
      grep -E "mlxr:|spill" "$LOGS/build.log" | sort -u | head -20
      python -c 'import mlx.core as mx, mlxr._ext as e; print("mlx", mx.__version__, mx.default_device(), "| mlxr backend", e.mlx_backend, "gpu_kernels", e.gpu_kernels)'
      ;;
    test)
      tests=""
      for op in $ops; do
        tests="$tests $src/tests/test_${op}_cuda.py"
      done
      timeout "${TEST_TIMEOUT:-420}" python -m pytest $tests "$src/tests/test_rms_norm.py" "$src/tests/test_hot_path.py" "$src/tests/test_hot_path_cuda.py" -v -n "${TEST_WORKERS:-4}" -p no:cacheprovider -rs \
        --durations=8 2>&1 \
        | tee "$LOGS/tests.log" | tail -25
      status=$((status | ${PIPESTATUS[0]}))
      # MLX without CUDA graphs launches our CUfunctions directly on its stream.
      MLX_USE_CUDA_GRAPHS=0 timeout "${NOGRAPH_TIMEOUT:-240}" python -m pytest $tests -v -x -p no:cacheprovider \
        -k "4097 or layouts or donated or stream" >"$LOGS/tests_nographs.log" 2>&1
      rc=$?
      echo "without CUDA graphs: exit $rc: $(tail -1 "$LOGS/tests_nographs.log")"
      status=$((status | rc))
      ;;
    sanitize)
      sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer \
        /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)"
      for op in ${SANITIZE_OPS:-$ops}; do
        for tool in memcheck racecheck; do
          "$sanitizer" --tool "$tool" --error-exitcode 99 \
            python "$src/csrc/cuda/sanitize.py" "$op" >"$LOGS/sanitize_${op}_$tool.log" 2>&1
          rc=$?
          echo "$op $tool exit $rc: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|sanitize run' "$LOGS/sanitize_${op}_$tool.log" | tr '\n' ' ')"
          status=$((status | rc))
        done
      done
      ;;
    bench)
      for op in ${BENCH_OPS:-$ops}; do
        [ -f "$src/csrc/cuda/bench_$op.py" ] || { echo "$op: no bench_$op.py"; continue; }
        (cd "$src/csrc/cuda" && python "bench_$op.py" --out "$LOGS" ${BENCH_ARGS:-}) 2>&1 | tee "$LOGS/bench_$op.log"
        status=$((status | ${PIPESTATUS[0]}))
      done
      ;;
    conformance) # the GPU certification (as `mlxr-conform certify` runs pytest: from a scratch dir)
      conf_dir="$(python -c 'import os, mlxr.conformance as c; print(os.path.dirname(c.__file__))')"
      if [ -f "$conf_dir/plugin.py" ]; then
        # An installed wheel registers the plugin as an entry point (loading it twice fails).
        plugin="$(python -c 'import importlib.metadata as m; print("" if any(e.name == "mlxr_conformance" for e in m.entry_points(group="pytest11")) else "-p mlxr.conformance.plugin")')"
        mkdir -p /tmp/conformance-run
        (cd /tmp/conformance-run && python -c "import sys; sys.path.append(sys.argv.pop(1)); import pytest; sys.exit(pytest.main(sys.argv[1:]))" \
          "$src" "$conf_dir" $plugin -p no:cacheprovider -q --no-header -rN -n "${CONF_WORKERS:-8}" ${CONF_ARGS:-} \
          --device gpu --profile ci --results "$LOGS/gpu-results.json") 2>&1 | tee "$LOGS/conformance.log" | tail -15
        status=$((status | ${PIPESTATUS[0]}))
        cp "$LOGS/gpu-results.json" "$OUT/" 2>/dev/null
      else
        echo "no conformance engine in this build"
      fi
      ;;
    profile) # Nsight Compute over the large and transposed cases (profile_rms_norm.py)
      ncu_bin="$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
      if [ "${PROFILE_OP:-rms_norm}" != rms_norm ]; then # whole sections of profile_<op>.py's kernels
        "$ncu_bin" --clock-control none --kernel-name "regex:${PROFILE_REGEX:-${PROFILE_OP}|LayerNorm|Rope}" --section SpeedOfLight \
          --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section WarpStateStats \
          python "$src/csrc/cuda/profile_${PROFILE_OP}.py" >"$LOGS/ncu_${PROFILE_OP}.txt" 2>&1
        echo "ncu exit $?"
        grep -E "^  [a-z_]+.*\(|Duration|Memory Throughput|DRAM Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issue Slots|Executed Ipc A|Stall|Block Limit|One or More|No Eligible|Warp Cycles Per Issued" \
          "$LOGS/ncu_${PROFILE_OP}.txt" | head -120
      else
      "$ncu_bin" --clock-control none --kernel-name regex:rms_norm --csv --metrics \
gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,\
dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,\
smsp__inst_executed.sum,launch__registers_per_thread,launch__grid_size,launch__block_size,\
lts__t_sector_hit_rate.pct,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio \
        python "$src/csrc/cuda/profile_rms_norm.py" >"$LOGS/ncu.csv" 2>&1
      echo "ncu exit $?"
      python - "$LOGS/ncu.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head, rows = rows[0], rows[1:]
k, m, v = head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value")
seen = {}
for r in rows:
    seen.setdefault((r[head.index("ID")], r[k][:60]), {})[r[m]] = r[v]
for (i, name), ms in seen.items():
    print(i, name)
    print("   ", "  ".join(f"{key.split('__')[1][:28]}={val}" for key, val in sorted(ms.items())))
PY
      fi
      ;;
    decode) # where a decode-sized call's time goes: Python split (DECODE_OPS, default rms_norm,
      # add_rms_norm and rope), then with NSYS=1 nsys per implementation
      for op in ${DECODE_OPS:-rms_norm add_rms_norm rope}; do
        (cd "$src/csrc/cuda" && CALLS="${CALLS:-1,20,60}" python profile_decode.py $op) 2>&1 | tee -a "$LOGS/decode.log"
      done
      nsys_bin="$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)"
      if [ "${NSYS:-0}" != 1 ]; then
        :
      elif [ -n "$nsys_bin" ]; then
        for impl in ours fast; do
          (cd "$src/csrc/cuda" && "$nsys_bin" profile -t cuda,nvtx,osrt -f true -o "$LOGS/decode_$impl" \
            python profile_decode.py "$impl") >"$LOGS/nsys_$impl.log" 2>&1
          "$nsys_bin" stats -q --report cuda_api_sum,cuda_gpu_kern_sum,nvtx_sum --format csv \
            "$LOGS/decode_$impl.nsys-rep" >"$LOGS/nsys_stats_$impl.csv" 2>&1
          echo "--- nsys $impl"; head -c 6000 "$LOGS/nsys_stats_$impl.csv"
        done
        rm -f "$LOGS"/decode_*.nsys-rep "$LOGS"/decode_*.sqlite
      else
        echo "no nsys on this machine"
      fi
      ;;
    managed) # decode with MLX's allocator (managed memory) for our outputs: host overhead check
      MLXR_CUDA_ALLOC=managed python "$src/csrc/cuda/bench_rms_norm.py" --only decode 2>&1 | tail -11
      ;;
  esac
  tar czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
done
echo "=== done $(date +%T), status $status"
exit $status

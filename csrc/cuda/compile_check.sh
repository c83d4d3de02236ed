#!/usr/bin/env bash
# Compile-checks the CUDA host and device code here, without a GPU: nvcc (if installed) against
# MLX-CUDA's headers, taken from the wheel that .device/ carries to the H100 (no link, no run).
# Prints ptxas register/spill lines with -v. Usage, from the source root:
#   bash csrc/cuda/compile_check.sh [-v] [csrc/cuda/<op>.cu ...]   (default: every op)
set -uo pipefail
verbose=0; [ "${1:-}" = "-v" ] && { verbose=1; shift; }
src="$(pwd)"; work="${TMPDIR:-/tmp}/mlxr-compile-check"; mkdir -p "$work"
if [ ! -d "$work/mlx/include" ]; then
  cat .device/a/part.* .device/b/part.* > "$work/mlx.whl" || { echo "no .device wheel parts (pack.sh)"; exit 2; }
  python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2], [m for m in z.namelist() if '/include/' in m])" \
    "$work/mlx.whl" "$work" && rm -f "$work/mlx.whl"
fi
files=("$@"); [ ${#files[@]} -eq 0 ] && files=($(ls csrc/cuda/*.cu | grep -v runtime.cu) csrc/cuda/runtime.cu)
status=0
for f in "${files[@]}"; do
  log="$work/$(basename "$f").log"
  nvcc -std=c++20 -arch=sm_90 --expt-relaxed-constexpr -DMLXR_GPU -DMLXR_CUDA -I"$src" -I"$src/csrc" \
    -I"$src/csrc/cuda" -I"$work/mlx/include" -Xptxas -v -c "$f" -o "$work/$(basename "$f").o" >"$log" 2>&1
  rc=$?; status=$((status | rc))
  echo "$f: exit $rc, $(grep -c 'spill stores' "$log") kernels, $(grep -E '[1-9][0-9]* bytes spill stores' -c "$log") spilling"
  [ $rc -ne 0 ] && grep -E "error" "$log" | head -10
  [ $verbose -eq 1 ] && grep -E "Compiling entry|registers|spill" "$log"
done
exit $status

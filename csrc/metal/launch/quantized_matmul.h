// Launch plan of kernels/quantized_matmul.metal: GEMV (a threadgroup per row of x and block
// of output columns) for few rows, tiled GEMM beyond.
#pragma once

#include "plan.h"

namespace mlxr::metal_launch {

// Rows of x up to this count take the GEMV kernels: they read w once per row, the GEMM once
// per kQmmTile rows but through threadgroup memory and barriers.
constexpr int64_t kQmmGemvMaxRows = 8;
// Kept equal to the kernel's constants (kGemvSimdgroups, kGemvTCols, kGemvNCols, kTile,
// kGemmThreads in kernels/quantized_matmul.metal).
constexpr size_t kQmmGemvSimdgroups = 2;
constexpr size_t kQmmGemvTCols = 4; // output columns per simdgroup, transpose
constexpr size_t kQmmGemvNCols = 32; // output columns per simdgroup, no transpose
constexpr size_t kQmmTile = 32;
constexpr size_t kQmmGemmThreads = 64;

struct QuantizedMatmulQuery {
  int64_t M; // rows of x (all leading axes), row-contiguous
  int64_t N; // output columns
  int64_t K; // contracted axis
  bool transpose; // w is N x K codes (true) or K x N (false)
  int group_size; // 32, 64, 128
  int bits; // 4, 8
  std::string dtype; // output dtype (of x, scales, biases too): float32, float16, bfloat16
};

inline std::string qmm_kernel_name(const QuantizedMatmulQuery& q, bool gemv) {
  return std::string("quantized_matmul_") + (gemv ? "gemv_" : "gemm_") + (q.transpose ? "t" : "n") +
         "_b" + std::to_string(q.bits) + "_g" + std::to_string(q.group_size) + "_" + q.dtype;
}

// Buffers: 0 x, 1 w, 2 scales, 3 biases (inputs 0..3), 4 out (output 0), 5 M, 6 N, 7 K (uint32).
// GEMV grid: (column blocks, M); GEMM grid: (N tiles, M tiles). The kernels' threadgroups
// are a few simdgroups, far below any pipeline limit, so the limits are not consulted.
inline Plan quantized_matmul_plan(const QuantizedMatmulQuery& q, const DeviceLimits& = {}) {
  auto blocks = [](int64_t n, size_t block) { return (static_cast<size_t>(n) + block - 1) / block; };
  bool gemv = q.M <= kQmmGemvMaxRows;
  Plan p;
  p.kernel = qmm_kernel_name(q, gemv);
  if (gemv) {
    size_t cols = kQmmGemvSimdgroups * (q.transpose ? kQmmGemvTCols : kQmmGemvNCols);
    p.grid = {blocks(q.N, cols), static_cast<size_t>(q.M), 1};
    p.group = {kQmmGemvSimdgroups * 32, 1, 1};
  } else {
    p.grid = {blocks(q.N, kQmmTile), blocks(q.M, kQmmTile), 1};
    p.group = {kQmmGemmThreads, 1, 1};
  }
  p.input(0, 0, "x");
  p.input(1, 1, "w");
  p.input(2, 2, "scales");
  p.input(3, 3, "biases");
  p.output(4, 0, "out");
  p.bytes<uint32_t>(5, "M", static_cast<uint32_t>(q.M));
  p.bytes<uint32_t>(6, "N", static_cast<uint32_t>(q.N));
  p.bytes<uint32_t>(7, "K", static_cast<uint32_t>(q.K));
  return p;
}

} // namespace mlxr::metal_launch

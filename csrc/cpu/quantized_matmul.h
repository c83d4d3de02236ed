// CPU kernels of the affine quantized matmul (csrc/quantized_matmul.h has the primitive).
// w holds `bits`-bit unsigned codes packed low-to-high in uint32 words along its last axis;
// every `group_size` codes share one scale s and bias b, and w_hat = s * q + b.
#pragma once

#include <cstdint>

namespace mlxr::cpu {

struct QuantizedMatmulArgs {
  const float* x;        // M x K, float32, row-contiguous (converted by the caller)
  const uint32_t* w;     // packed codes, row-contiguous: (N, K*bits/32) or (K, N*bits/32)
  const void* scales;    // row-contiguous, the output's storage dtype: (N, K/gs) or (K, N/gs)
  const void* biases;    // same layout as scales
  float* out;            // M x N, float32, row-contiguous
  int64_t M, N, K;
  int group_size;
  int bits;
  bool transpose;        // true: out = x @ w_hat.T (w_hat is N x K); false: x @ w_hat
};

// Rows up to this count take the GEMV path (codes unpacked on the fly, never materialised,
// x in blocks of 8 rows); more rows dequantise K-panels of w once and reuse them across rows
// (GEMM path). MLXR_QMM_GEMV_MAX_ROWS overrides the measured default (for benchmarking).
int64_t qmm_gemv_max_rows();

// n elements of the storage dtype (element step `step`) to float32, and back, with the run-time
// ISA's conversions: outside an ISA-targeted function float16 converts through a libgcc call
// per element (120 us of a 4096 x 4096 float16 decode's 585 us).
template <typename D>
void to_float32(const typename D::storage* src, int64_t step, float* dst, int64_t n);
template <typename D>
void from_float32(const float* src, typename D::storage* dst, int64_t n);

// D is the storage dtype of scales and biases (cpu::F32, cpu::F16 or cpu::BF16). Returns the
// path taken: "gemv" or "gemm" (non-finite or huge x always takes "gemm").
template <typename D>
const char* quantized_matmul(const QuantizedMatmulArgs& args);

} // namespace mlxr::cpu

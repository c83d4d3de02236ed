// Affine quantized matmul device code (MLX's mode="affine" layout): w packs 32 / kBits codes q
// per uint32 word, code i at bits [i * kBits, (i + 1) * kBits); every group_size codes along
// w's last axis share a scale s and a bias b, and w_hat = s * q + b. All arithmetic is float32,
// each output rounded once. Host: csrc/cuda/quantized_matmul.cu.
//
//   qmv_t  transpose, few rows: out[m, n] = sum_k x[m, k] w_hat[n, k]. A warp owns kCols
//          columns n; each lane takes 4-word chunks of their w rows (one 16-byte load each
//          where aligned), which lie inside one group, and adds sum(x * (s q + b)); the lanes'
//          sums meet through warp shuffles.
//   qmv_n  no transpose, few rows: out[m, n] = sum_k x[m, k] w_hat[k, n]. A thread owns the 8
//          columns of one 32-bit slice of a w row (one group) for every 64th k; sums meet
//          through shuffles and shared memory.
//   qmm    any rows: 64 x 64 output tiles, K in steps of 32. x and the dequantised w tile go
//          to shared memory as float32; each thread accumulates a 4 x 4 block in registers.
//
// Every path multiplies x by w_hat = s * q + b (in float32, as the reference forms it) rather
// than forming s * sum(x q) + b * sum(x): an infinite x then gives the reference's inf, not
// inf * 0 = NaN where a code is 0.
#pragma once

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"

namespace mlxr::cuda {

struct QmmParams {
  const void* x; // M x K, storage dtype T
  const uint32_t* w; // transpose: N x K * bits / 32 words, else K x N * bits / 32
  const void* scales; // T; transpose: N x K / gs, else K x N / gs
  const void* biases; // same shape as scales
  void* out; // M x N, row-contiguous, T
  int64_t M;
  int N, K, group_size;
  int64_t x_step; // elements between neighbours in a row of x
  Layout x_rows; // row m of x starts at layout_offset(x_rows, m)
  int64_t w_rs, w_cs; // words between rows / neighbouring words of w
  int64_t s_rs, s_cs, b_rs, b_cs; // elements between rows / neighbours of scales, biases
};

constexpr int kQmvTWarps = 4; // warps per qmv_t block
constexpr int kQmvTCols = 4; // columns per warp
constexpr int kQmvNWarps = 8; // qmv_n: 8 warps of (4 column slices x 8 k) = 32 columns, 64 k
constexpr int kQmmBM = 64, kQmmBN = 64, kQmmBK = 32, kQmmThreads = 256;

template <int kBits>
__device__ __forceinline__ float code(uint32_t word, int j) {
  return static_cast<float>((word >> (j * kBits)) & ((1u << kBits) - 1u));
}

template <typename T>
__device__ __forceinline__ float param(const void* base, int64_t row, int64_t rs, int64_t col, int64_t cs) {
  return to_float(static_cast<const T*>(base)[row * rs + col * cs]);
}

// kN consecutive elements of x's row `x_row` from element k: one or more 16-byte loads when
// kVec (the host checked alignment), else strided scalar loads.
template <typename T, int kN, bool kVec>
__device__ __forceinline__ void load_x(const QmmParams& p, const T* x_row, int64_t k, float (&out)[kN]) {
  if constexpr (kVec) {
    constexpr int V = 16 / sizeof(T);
    static_assert(kN % V == 0, "whole 16-byte units");
    const auto* src = reinterpret_cast<const Vec<T, V>*>(x_row + k);
#pragma unroll
    for (int u = 0; u < kN / V; ++u) {
      Vec<T, V> v = src[u];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        out[u * V + e] = to_float(v.v[e]);
      }
    }
  } else {
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      out[j] = to_float(x_row[(k + j) * p.x_step]);
    }
  }
}

// grid (ceil(N / (kQmvTWarps * kQmvTCols)), ceil(M / kRows)), block 32 * kQmvTWarps.
// kVec: w rows are 16-byte aligned runs of words and x rows 16-byte aligned runs of elements.
template <typename T, int kBits, int kRows, bool kVec>
__global__ void __launch_bounds__(32 * kQmvTWarps) qmv_t(const QmmParams p) {
  constexpr int kWords = 4; // words per chunk
  constexpr int kCodes = kWords * 32 / kBits; // 32 (4-bit) or 16 (8-bit): inside one group
  const int lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * kQmvTWarps + threadIdx.x / 32) * kQmvTCols;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kRows;
  if (n0 >= p.N) {
    return; // whole warp: no shuffle partner is lost
  }
  const T* x = static_cast<const T*>(p.x);
  const T* x_row[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    int64_t m = m0 + r < p.M ? m0 + r : p.M - 1; // tail rows repeat the last row, unstored
    x_row[r] = x + layout_offset(p.x_rows, m);
  }
  float acc[kRows][kQmvTCols] = {};
  const int n_chunks = p.K / kCodes;
  for (int c = lane; c < n_chunks; c += 32) {
    const int64_t k = int64_t(c) * kCodes;
    const int g = static_cast<int>(k / p.group_size);
    uint32_t words[kQmvTCols][kWords];
    float s[kQmvTCols], b[kQmvTCols];
#pragma unroll
    for (int j = 0; j < kQmvTCols; ++j) {
      const int n = n0 + j < p.N ? n0 + j : p.N - 1; // tail columns: loaded, never stored
      const uint32_t* w = p.w + n * p.w_rs + int64_t(c) * kWords * p.w_cs;
      if constexpr (kVec) {
        uint4 v = *reinterpret_cast<const uint4*>(w);
        words[j][0] = v.x, words[j][1] = v.y, words[j][2] = v.z, words[j][3] = v.w;
      } else {
#pragma unroll
        for (int i = 0; i < kWords; ++i) {
          words[j][i] = w[i * p.w_cs];
        }
      }
      s[j] = param<T>(p.scales, n, p.s_rs, g, p.s_cs);
      b[j] = param<T>(p.biases, n, p.b_rs, g, p.b_cs);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float xv[kCodes];
      load_x<T, kCodes, kVec>(p, x_row[r], k, xv);
#pragma unroll
      for (int j = 0; j < kQmvTCols; ++j) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kWords; ++i) {
#pragma unroll
          for (int e = 0; e < 32 / kBits; ++e) {
            dot = fmaf(xv[i * (32 / kBits) + e], fmaf(s[j], code<kBits>(words[j][i], e), b[j]), dot);
          }
        }
        acc[r][j] += dot;
      }
    }
  }
  // Every lane ends with every sum; lane r * kQmvTCols + j stores sum (r, j).
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int j = 0; j < kQmvTCols; ++j) {
      float v = acc[r][j];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
      }
      if (lane == r * kQmvTCols + j && m0 + r < p.M && n0 + j < p.N) {
        out[(m0 + r) * p.N + n0 + j] = from_float<T>(v);
      }
    }
  }
}

// grid (N / 32, ceil(M / kRows)), block 32 * kQmvNWarps. N is a multiple of group_size >= 32,
// so every 32-column block is whole and each thread's 8 columns share one group.
template <typename T, int kBits, int kRows>
__global__ void __launch_bounds__(32 * kQmvNWarps) qmv_n(const QmmParams p) {
  constexpr int kWords = kBits / 4; // words holding 8 codes
  constexpr int kKPerBlock = 8 * kQmvNWarps;
  __shared__ float partial[kQmvNWarps][kRows * 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int slice = lane % 4; // 8 columns each
  const int n = blockIdx.x * 32 + slice * 8;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kRows;
  const T* x = static_cast<const T*>(p.x);
  const T* x_row[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    int64_t m = m0 + r < p.M ? m0 + r : p.M - 1;
    x_row[r] = x + layout_offset(p.x_rows, m);
  }
  const int g = n / p.group_size;
  const int64_t word0 = int64_t(n) * kBits / 32;
  float acc[kRows][8] = {};
#pragma unroll 4 // several rows' words in flight: one 4-byte load per row is little
  for (int64_t k = lane / 4 + 8 * warp; k < p.K; k += kKPerBlock) {
    float q[8];
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
      uint32_t word = p.w[k * p.w_rs + (word0 + i) * p.w_cs];
#pragma unroll
      for (int e = 0; e < 32 / kBits; ++e) {
        q[i * (32 / kBits) + e] = code<kBits>(word, e);
      }
    }
    const float s = param<T>(p.scales, k, p.s_rs, g, p.s_cs);
    const float b = param<T>(p.biases, k, p.b_rs, g, p.b_cs);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      q[e] = fmaf(s, q[e], b); // w_hat
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float xv = to_float(x_row[r][k * p.x_step]);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        acc[r][e] = fmaf(xv, q[e], acc[r][e]);
      }
    }
  }
  // Lanes with the same slice (lane % 4) hold the same columns: fold the 8 k-lanes, then the
  // warps through shared memory.
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float v = acc[r][e];
      v += __shfl_xor_sync(0xffffffffu, v, 4);
      v += __shfl_xor_sync(0xffffffffu, v, 8);
      v += __shfl_xor_sync(0xffffffffu, v, 16);
      if (lane < 4) {
        partial[warp][r * 32 + slice * 8 + e] = v;
      }
    }
  }
  __syncthreads();
  T* out = static_cast<T*>(p.out);
  for (int i = threadIdx.x; i < kRows * 32; i += blockDim.x) {
    const int r = i / 32;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kQmvNWarps; ++w) {
      v += partial[w][i];
    }
    if (m0 + r < p.M) {
      out[(m0 + r) * p.N + blockIdx.x * 32 + i % 32] = from_float<T>(v);
    }
  }
}

// grid (ceil(N / 64), ceil(M / 64)), block kQmmThreads. Tails in M, N (transpose) and K (no
// transpose) load zeros and store nothing.
template <typename T, int kBits, bool kTranspose>
__global__ void __launch_bounds__(kQmmThreads) qmm(const QmmParams p) {
  constexpr int kPerWord = 32 / kBits;
  constexpr int kPad = 4; // keeps float4 reads aligned, spreads the transposing stores
  __shared__ __align__(16) float xs[kQmmBK][kQmmBM + kPad];
  __shared__ __align__(16) float ws[kQmmBK][kQmmBN + kPad];
  const int t = threadIdx.x;
  const int tx = t % 16, ty = t / 16;
  const int n0 = blockIdx.x * kQmmBN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kQmmBM;
  const T* x = static_cast<const T*>(p.x);
  float acc[4][4] = {};
  for (int k0 = 0; k0 < p.K; k0 += kQmmBK) {
    // x tile: threads walk along k (adjacent in memory for row-major x).
#pragma unroll
    for (int i = t; i < kQmmBM * kQmmBK; i += kQmmThreads) {
      const int mm = i / kQmmBK, kk = i % kQmmBK;
      const int64_t m = m0 + mm;
      const int k = k0 + kk;
      xs[kk][mm] = m < p.M && k < p.K ? to_float(x[layout_offset(p.x_rows, m) + k * p.x_step]) : 0.0f;
    }
    // w tile, dequantised: one word (kPerWord codes, one group) per step.
    if constexpr (kTranspose) {
      constexpr int kWordsPerRow = kQmmBK / kPerWord; // K is a multiple of 32: no K tail
#pragma unroll
      for (int i = t; i < kQmmBN * kWordsPerRow; i += kQmmThreads) {
        const int nn = i / kWordsPerRow, wi = i % kWordsPerRow;
        const int n = n0 + nn;
        const int k = k0 + wi * kPerWord;
        if (n < p.N) {
          const uint32_t word = p.w[n * p.w_rs + (k / kPerWord) * p.w_cs];
          const float s = param<T>(p.scales, n, p.s_rs, k / p.group_size, p.s_cs);
          const float b = param<T>(p.biases, n, p.b_rs, k / p.group_size, p.b_cs);
#pragma unroll
          for (int e = 0; e < kPerWord; ++e) {
            ws[wi * kPerWord + e][nn] = fmaf(s, code<kBits>(word, e), b);
          }
        } else {
#pragma unroll
          for (int e = 0; e < kPerWord; ++e) {
            ws[wi * kPerWord + e][nn] = 0.0f;
          }
        }
      }
    } else {
      constexpr int kWordsPerRow = kQmmBN / kPerWord;
#pragma unroll
      for (int i = t; i < kQmmBK * kWordsPerRow; i += kQmmThreads) {
        const int kk = i / kWordsPerRow, wi = i % kWordsPerRow;
        const int k = k0 + kk;
        const int n = n0 + wi * kPerWord; // N is a multiple of 32: a word is all in or all out
        if (k < p.K && n < p.N) {
          const uint32_t word = p.w[k * p.w_rs + (n / kPerWord) * p.w_cs];
          const float s = param<T>(p.scales, k, p.s_rs, n / p.group_size, p.s_cs);
          const float b = param<T>(p.biases, k, p.b_rs, n / p.group_size, p.b_cs);
#pragma unroll
          for (int e = 0; e < kPerWord; ++e) {
            ws[kk][wi * kPerWord + e] = fmaf(s, code<kBits>(word, e), b);
          }
        } else {
#pragma unroll
          for (int e = 0; e < kPerWord; ++e) {
            ws[kk][wi * kPerWord + e] = 0.0f;
          }
        }
      }
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kQmmBK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&xs[kk][ty * 4]);
      const float4 c = *reinterpret_cast<const float4*>(&ws[kk][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, cv[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          acc[i][j] = fmaf(av[i], cv[j], acc[i][j]);
        }
      }
    }
    __syncthreads();
  }
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty * 4 + i;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx * 4 + j;
      if (m < p.M && n < p.N) {
        out[m * p.N + n] = from_float<T>(acc[i][j]);
      }
    }
  }
}

} // namespace mlxr::cuda

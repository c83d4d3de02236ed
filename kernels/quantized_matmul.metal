// Affine quantized matmul kernels: out = round_T(x @ w_hat.T) (transpose) or round_T(x @ w_hat),
// w_hat = scale * q + bias per group of group_size codes along w's last axis, q the `bits`-bit
// codes packed low-to-high in uint32 words. x, scales, biases and out are T (the op casts them
// to the output dtype); float32 accumulation. Host: csrc/metal/quantized_matmul.cpp; launch plan
// and buffer layout: csrc/metal/launch/quantized_matmul.h. Every buffer is row-contiguous (the
// op makes them so on GPU streams). Shapes the op guarantees: transpose -> K % group_size == 0;
// no transpose -> N % group_size == 0 (so N % 32 == 0); M, N (transpose) and K (no transpose)
// are arbitrary.
#include <metal_stdlib>

using namespace metal;

constant constexpr uint kSimdSize = 32;
// GEMV: simdgroups per threadgroup; codes per lane per pass (transpose: along K, word
// aligned, so a lane's codes share one group); output columns per simdgroup (kQmmGemv*
// in the launch plan). No transpose, a lane reads kGemvNCols codes of one row of w: 16 or
// 32 contiguous bytes.
constant constexpr uint kGemvSimdgroups = 2;
constant constexpr uint kGemvValues = 8;
constant constexpr uint kGemvTCols = 4;
constant constexpr uint kGemvNCols = 32;
// GEMM: a kTile x kTile block of out per threadgroup of kGemmThreads threads, K in kTile
// steps; each thread owns kMicro x kMicro outputs strided by kTile / kMicro. Tiles are
// stored [row][k] with a padded leading dimension against bank conflicts.
constant constexpr uint kTile = 32;
constant constexpr uint kTileLd = kTile + 1;
constant constexpr uint kMicro = 4;
constant constexpr uint kMicroStride = kTile / kMicro;
constant constexpr uint kGemmThreads = kMicroStride * kMicroStride;

template <int bits>
inline float code(uint32_t word, uint i) {
  return static_cast<float>((word >> (i * bits)) & ((1u << bits) - 1u));
}

// out[row, n0 + c] for c < kGemvTCols, transpose: w is N x K codes. Each lane takes
// kGemvValues consecutive codes per pass and accumulates x * w_hat for each output column (not
// the factored scale * sum(x * q) + bias * sum(x): an infinite x meeting q = 0 would give NaN);
// simd_sum adds the lanes. K is a multiple of group_size (>= 32), so a
// lane's chunk never straddles a group or K's end. The column guard is uniform per simdgroup.
template <typename T, int group_size, int bits>
[[kernel]] void qmm_gemv_t(
    device const T* x [[buffer(0)]],
    device const uint32_t* w [[buffer(1)]],
    device const T* scales [[buffer(2)]],
    device const T* biases [[buffer(3)]],
    device T* out [[buffer(4)]],
    constant uint& M [[buffer(5)]],
    constant uint& N [[buffer(6)]],
    constant uint& K [[buffer(7)]],
    uint3 tgid [[threadgroup_position_in_grid]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]]) {
  constexpr uint pack = 32 / bits;
  constexpr uint words = kGemvValues / pack;
  uint row = tgid.y;
  uint n0 = (tgid.x * kGemvSimdgroups + simd_group) * kGemvTCols;
  if (row >= M || n0 >= N) {
    return;
  }
  uint row_words = K / pack;
  uint groups = K / group_size;
  x += static_cast<size_t>(row) * K;

  float acc[kGemvTCols] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (uint k = simd_lane * kGemvValues; k < K; k += kSimdSize * kGemvValues) {
    float xv[kGemvValues];
    for (uint j = 0; j < kGemvValues; ++j) {
      xv[j] = static_cast<float>(x[k + j]);
    }
    for (uint c = 0; c < kGemvTCols && n0 + c < N; ++c) {
      size_t n = n0 + c;
      device const uint32_t* wn = w + n * row_words + k / pack;
      size_t g = n * groups + k / group_size;
      float scale = static_cast<float>(scales[g]), bias = static_cast<float>(biases[g]);
      for (uint i = 0; i < words; ++i) {
        uint32_t word = wn[i];
        for (uint j = 0; j < pack; ++j) {
          acc[c] += xv[i * pack + j] * (scale * code<bits>(word, j) + bias);
        }
      }
    }
  }
  for (uint c = 0; c < kGemvTCols; ++c) {
    float total = simd_sum(acc[c]);
    if (simd_lane == 0 && n0 + c < N) {
      out[static_cast<size_t>(row) * N + n0 + c] = static_cast<T>(total);
    }
  }
}

// out[row, n0 + c] for c < kGemvNCols, no transpose: w is K x N codes. Lanes split K (k =
// lane, lane + 32, ...; lanes past a short K add nothing) and accumulate x_k * w_hat[k, n]
// for kGemvNCols (= 32) columns, which share one group; simd_sum adds the lanes. N is a
// multiple of group_size (so of 32): a simdgroup's columns are all in range or all out.
template <typename T, int group_size, int bits>
[[kernel]] void qmm_gemv_n(
    device const T* x [[buffer(0)]],
    device const uint32_t* w [[buffer(1)]],
    device const T* scales [[buffer(2)]],
    device const T* biases [[buffer(3)]],
    device T* out [[buffer(4)]],
    constant uint& M [[buffer(5)]],
    constant uint& N [[buffer(6)]],
    constant uint& K [[buffer(7)]],
    uint3 tgid [[threadgroup_position_in_grid]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]]) {
  constexpr uint pack = 32 / bits;
  constexpr uint words = kGemvNCols / pack;
  uint row = tgid.y;
  uint n0 = (tgid.x * kGemvSimdgroups + simd_group) * kGemvNCols;
  if (row >= M || n0 >= N) {
    return;
  }
  uint row_words = N / pack;
  uint groups = N / group_size;
  x += static_cast<size_t>(row) * K;

  float acc[kGemvNCols];
  for (uint c = 0; c < kGemvNCols; ++c) {
    acc[c] = 0.0f;
  }
  for (uint k = simd_lane; k < K; k += kSimdSize) {
    float xk = static_cast<float>(x[k]);
    size_t g = static_cast<size_t>(k) * groups + n0 / group_size;
    float scale = static_cast<float>(scales[g]);
    float bias = static_cast<float>(biases[g]);
    device const uint32_t* wk = w + static_cast<size_t>(k) * row_words + n0 / pack;
    for (uint i = 0; i < words; ++i) {
      uint32_t word = wk[i];
      for (uint j = 0; j < pack; ++j) {
        acc[i * pack + j] += xk * (scale * code<bits>(word, j) + bias);
      }
    }
  }
  for (uint c = 0; c < kGemvNCols; ++c) {
    float total = simd_sum(acc[c]);
    if (simd_lane == 0) {
      out[static_cast<size_t>(row) * N + n0 + c] = static_cast<T>(total);
    }
  }
}

// x[m0 .. m0 + kTile, k0 .. k0 + kTile) into xs[m][k] as float, zeros past M or K.
template <typename T>
inline void load_x_tile(device const T* x, threadgroup float* xs, uint M, uint K, uint m0,
                        uint k0, uint lid) {
  for (uint i = lid; i < kTile * kTile; i += kGemmThreads) {
    uint r = i / kTile, c = i % kTile;
    bool inside = m0 + r < M && k0 + c < K;
    xs[r * kTileLd + c] = inside ? static_cast<float>(x[static_cast<size_t>(m0 + r) * K + k0 + c]) : 0.0f;
  }
}

// w_hat[n0 .. n0 + kTile, k0 .. k0 + kTile) into ws[n][k], transpose (w is N x K codes): one
// word per thread and step; a tile row's codes share one group (K, k0 multiples of 32 and of
// kTile, group_size >= 32). Rows past N are zeros.
template <typename T, int group_size, int bits>
inline void load_w_tile_t(device const uint32_t* w, device const T* scales,
                          device const T* biases, threadgroup float* ws, uint N, uint K,
                          uint n0, uint k0, uint lid) {
  constexpr uint pack = 32 / bits;
  constexpr uint tile_words = kTile / pack;
  for (uint i = lid; i < kTile * tile_words; i += kGemmThreads) {
    uint r = i / tile_words, word_index = i % tile_words;
    threadgroup float* dst = ws + r * kTileLd + word_index * pack;
    if (n0 + r >= N) {
      for (uint j = 0; j < pack; ++j) {
        dst[j] = 0.0f;
      }
      continue;
    }
    size_t n = n0 + r;
    uint32_t word = w[n * (K / pack) + (k0 / pack) + word_index];
    size_t g = n * (K / group_size) + k0 / group_size;
    float scale = static_cast<float>(scales[g]), bias = static_cast<float>(biases[g]);
    for (uint j = 0; j < pack; ++j) {
      dst[j] = scale * code<bits>(word, j) + bias;
    }
  }
}

// The same tile, no transpose (w is K x N codes): codes of row k, columns n0 .. n0 + kTile
// (one group, always inside N since N % 32 == 0) go to ws[n][k]. Rows past K are zeros.
template <typename T, int group_size, int bits>
inline void load_w_tile_n(device const uint32_t* w, device const T* scales,
                          device const T* biases, threadgroup float* ws, uint N, uint K,
                          uint n0, uint k0, uint lid) {
  constexpr uint pack = 32 / bits;
  constexpr uint tile_words = kTile / pack;
  for (uint i = lid; i < kTile * tile_words; i += kGemmThreads) {
    uint r = i / tile_words, word_index = i % tile_words;
    threadgroup float* dst = ws + word_index * pack * kTileLd + r;
    if (k0 + r >= K) {
      for (uint j = 0; j < pack; ++j) {
        dst[j * kTileLd] = 0.0f;
      }
      continue;
    }
    size_t k = k0 + r;
    uint32_t word = w[k * (N / pack) + (n0 / pack) + word_index];
    size_t g = k * (N / group_size) + n0 / group_size;
    float scale = static_cast<float>(scales[g]), bias = static_cast<float>(biases[g]);
    for (uint j = 0; j < pack; ++j) {
      dst[j * kTileLd] = scale * code<bits>(word, j) + bias;
    }
  }
}

// Tiled GEMM: per K step, the threadgroup stages x and dequantized w tiles in threadgroup
// memory (barrier), each thread accumulates its kMicro x kMicro outputs (barrier before the
// tiles are overwritten). Every thread runs every step, so the barriers are uniform.
template <typename T, int group_size, int bits, bool transpose>
[[kernel]] void qmm_gemm(
    device const T* x [[buffer(0)]],
    device const uint32_t* w [[buffer(1)]],
    device const T* scales [[buffer(2)]],
    device const T* biases [[buffer(3)]],
    device T* out [[buffer(4)]],
    constant uint& M [[buffer(5)]],
    constant uint& N [[buffer(6)]],
    constant uint& K [[buffer(7)]],
    uint3 tgid [[threadgroup_position_in_grid]],
    uint lid [[thread_index_in_threadgroup]]) {
  threadgroup float xs[kTile * kTileLd];
  threadgroup float ws[kTile * kTileLd];
  uint m0 = tgid.y * kTile, n0 = tgid.x * kTile;
  uint tm = lid / kMicroStride, tn = lid % kMicroStride;

  float acc[kMicro * kMicro];
  for (uint i = 0; i < kMicro * kMicro; ++i) {
    acc[i] = 0.0f;
  }
  for (uint k0 = 0; k0 < K; k0 += kTile) {
    load_x_tile(x, xs, M, K, m0, k0, lid);
    if (transpose) {
      load_w_tile_t<T, group_size, bits>(w, scales, biases, ws, N, K, n0, k0, lid);
    } else {
      load_w_tile_n<T, group_size, bits>(w, scales, biases, ws, N, K, n0, k0, lid);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint kk = 0; kk < kTile; ++kk) {
      float xr[kMicro], wc[kMicro];
      for (uint a = 0; a < kMicro; ++a) {
        xr[a] = xs[(tm + a * kMicroStride) * kTileLd + kk];
        wc[a] = ws[(tn + a * kMicroStride) * kTileLd + kk];
      }
      for (uint a = 0; a < kMicro; ++a) {
        for (uint b = 0; b < kMicro; ++b) {
          acc[a * kMicro + b] += xr[a] * wc[b];
        }
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  for (uint a = 0; a < kMicro; ++a) {
    uint m = m0 + tm + a * kMicroStride;
    for (uint b = 0; b < kMicro; ++b) {
      uint n = n0 + tn + b * kMicroStride;
      if (m < M && n < N) {
        out[static_cast<size_t>(m) * N + n] = static_cast<T>(acc[a * kMicro + b]);
      }
    }
  }
}

// Kernel names quantized_matmul_<variant>_<dtype>, variant = {gemv,gemm}_{t,n}_b<bits>_g<group>
// (t: transpose).
#define instantiate_qmm_shape(name, type, gs, b)                                                 \
  template [[host_name("quantized_matmul_gemv_t_b" #b "_g" #gs "_" #name)]] [[kernel]]           \
      decltype(qmm_gemv_t<type, gs, b>) qmm_gemv_t<type, gs, b>;                                 \
  template [[host_name("quantized_matmul_gemv_n_b" #b "_g" #gs "_" #name)]] [[kernel]]           \
      decltype(qmm_gemv_n<type, gs, b>) qmm_gemv_n<type, gs, b>;                                 \
  template [[host_name("quantized_matmul_gemm_t_b" #b "_g" #gs "_" #name)]] [[kernel]]           \
      decltype(qmm_gemm<type, gs, b, true>) qmm_gemm<type, gs, b, true>;                         \
  template [[host_name("quantized_matmul_gemm_n_b" #b "_g" #gs "_" #name)]] [[kernel]]           \
      decltype(qmm_gemm<type, gs, b, false>) qmm_gemm<type, gs, b, false>;

#define instantiate_quantized_matmul(name, type) \
  instantiate_qmm_shape(name, type, 32, 4)       \
  instantiate_qmm_shape(name, type, 64, 4)       \
  instantiate_qmm_shape(name, type, 128, 4)      \
  instantiate_qmm_shape(name, type, 32, 8)       \
  instantiate_qmm_shape(name, type, 64, 8)       \
  instantiate_qmm_shape(name, type, 128, 8)

instantiate_quantized_matmul(float32, float)
instantiate_quantized_matmul(float16, half)
instantiate_quantized_matmul(bfloat16, bfloat)

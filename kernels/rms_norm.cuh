// RMSNorm device code: y = round(x * rsqrt(mean(x^2) + eps)) [* weight], float32 accumulation,
// the normalised value rounded to the output dtype before the weight multiply (the rule of
// reference/rms_norm.py). Host dispatch: csrc/cuda/rms_norm.cu.
//
// Three kernels, one per input layout, all reading x in place (no contiguous copy first):
//   rms_norm_rows   rows whose elements are adjacent (x_step == 1), any row start alignment:
//                   a few scalar head elements up to the 16-byte boundary, a 16-byte vector
//                   body, a scalar tail. kChunks > 0 keeps the row in registers (one read of
//                   x); kChunks == 0 loops over the row twice (long rows).
//   rms_norm_cols   rows adjacent to each other but elements strided (a transposed matrix):
//                   32 x kRpl rows per block, loads coalesced across rows, written back
//                   through a shared-memory transpose so that the stores are coalesced too.
//   rms_norm_cols_smem the same layout with rows short enough to be held in shared memory:
//                   32 bytes of rows per block, x read once instead of twice.
//   rms_norm_strided anything else (x[:, ::2], reversed rows): scalar strided loads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"
#include "reduce.cuh"

namespace mlxr::cuda {

// Leading (row) axes after collapsing; the op builder flattens arrays with more.
constexpr int kMaxRowDims = 6;

struct RMSNormParams {
  const void* x;
  const void* weight; // null: no weight
  void* out; // row-contiguous, n_rows x row_size
  int64_t n_rows;
  int row_size;
  int64_t x_step; // elements between neighbours in a row of x
  int64_t w_step; // elements between neighbours in weight (0: broadcast)
  float eps;
  // Row r of x starts at sum_k idx_k(r) * row_strides[k], idx over row_shape in row-major order.
  int row_ndim;
  int64_t row_shape[kMaxRowDims];
  int64_t row_strides[kMaxRowDims];
};

// The output value: round the normalised value first, then multiply by the weight in the
// output dtype (exact in float for f16/bf16 products, then rounded once).
template <typename T>
__device__ __forceinline__ T finish(float x, float inv_rms, const T* w, int64_t wi) {
  T normed = from_float<T>(x * inv_rms);
  return w ? from_float<T>(to_float(normed) * to_float(w[wi])) : normed;
}

// Written out, not through strided_offset (kernels/layout.cuh): that call compiles
// rms_norm_strided<float> differently (same registers), a change not yet measured on a GPU.
__device__ __forceinline__ int64_t row_offset(const RMSNormParams& p, int64_t row) {
  if (p.row_ndim == 1) { // the common case, without 64-bit division
    return row * p.row_strides[0];
  }
  int64_t off = 0;
  for (int k = p.row_ndim - 1; k >= 0; --k) {
    off += (row % p.row_shape[k]) * p.row_strides[k];
    row /= p.row_shape[k];
  }
  return off;
}

// How a row splits around 16-byte boundaries: [0, head) scalar, then n_vec vectors, then tail.
struct RowSplit {
  int head, n_vec, tail;
};

template <typename T, int V>
__device__ __forceinline__ RowSplit split_row(const T* row, int n) {
  int misalign = static_cast<int>(reinterpret_cast<uintptr_t>(row) % 16);
  int head = misalign ? (16 - misalign) / static_cast<int>(sizeof(T)) : 0;
  head = head < n ? head : n;
  int n_vec = (n - head) / V;
  return {head, n_vec, n - head - n_vec * V};
}

// Two adjacent elements at once: the rounding conversion and the weight multiply are one
// paired instruction each for half types. The weight product of two half values is exact in
// float, so the native half/bf16 multiply rounds it exactly as float-then-round would.
template <typename T>
struct Pair;
template <>
struct Pair<float> {
  __device__ __forceinline__ static void finish(const float* x, float inv_rms, bool has_w,
                                                const float* w, float* y) {
    y[0] = x[0] * inv_rms;
    y[1] = x[1] * inv_rms;
    if (has_w) {
      y[0] *= w[0];
      y[1] *= w[1];
    }
  }
};
template <>
struct Pair<__half> {
  __device__ __forceinline__ static void finish(const __half* x, float inv_rms, bool has_w,
                                                const __half* w, __half* y) {
    __half2 v = __float22half2_rn(make_float2(__half2float(x[0]) * inv_rms,
                                              __half2float(x[1]) * inv_rms));
    if (has_w) {
      v = __hmul2(v, __halves2half2(w[0], w[1]));
    }
    y[0] = __low2half(v);
    y[1] = __high2half(v);
  }
};
template <>
struct Pair<__nv_bfloat16> {
  __device__ __forceinline__ static void finish(const __nv_bfloat16* x, float inv_rms,
                                                bool has_w, const __nv_bfloat16* w,
                                                __nv_bfloat16* y) {
    __nv_bfloat162 v = __float22bfloat162_rn(make_float2(__bfloat162float(x[0]) * inv_rms,
                                                         __bfloat162float(x[1]) * inv_rms));
    if (has_w) {
      v = __hmul2(v, __halves2bfloat162(w[0], w[1]));
    }
    y[0] = __low2bfloat16(v);
    y[1] = __high2bfloat16(v);
  }
};

// Writes vector c of the body: 16-byte stores when out and weight share x's alignment phase.
template <typename T, int V>
__device__ __forceinline__ void store_vec(
    const Vec<T, V>& xv, int c, int head, float inv_rms, const T* w, int64_t w_step,
    T* out_row, bool vec_out, bool vec_w) {
  int i0 = head + c * V;
  Vec<T, V> wv = {};
  if (w) {
    if (vec_w) {
      wv = *reinterpret_cast<const Vec<T, V>*>(w + i0);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        wv.v[j] = w[(i0 + j) * w_step];
      }
    }
  }
  Vec<T, V> y;
#pragma unroll
  for (int j = 0; j < V; j += 2) {
    Pair<T>::finish(xv.v + j, inv_rms, w != nullptr, wv.v + j, y.v + j);
  }
  if (vec_out) {
    *reinterpret_cast<Vec<T, V>*>(out_row + i0) = y;
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) {
      out_row[i0 + j] = y.v[j];
    }
  }
}

// kGroup threads per row (32: a warp per row, several rows per block; else the whole block).
// kChunks > 0: thread g holds vectors g, g + kGroup, ... in registers; needs
// n_vec <= kChunks * kGroup. kChunks == 0: two passes over global memory, any row length.
template <typename T, int kBlock, int kGroup, int kChunks>
__global__ void __launch_bounds__(kBlock) rms_norm_rows(const __grid_constant__ RMSNormParams p) {
  constexpr int V = 16 / sizeof(T);
  constexpr int kRowsPerBlock = kBlock / kGroup;
  __shared__ float scratch[32];
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weight);
  T* out = static_cast<T*>(p.out);
  const int n = p.row_size;
  const int g = threadIdx.x % kGroup;
  const bool vec_w = w && p.w_step == 1;

  for (int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kGroup;
       row - threadIdx.x / kGroup < p.n_rows;
       row += int64_t(gridDim.x) * kRowsPerBlock) {
    // Rows past the end still join the block-wide reduction (kGroup == kBlock has one row).
    const bool live = row < p.n_rows;
    const T* x_row = x + (live ? row_offset(p, row) : 0);
    T* out_row = out + (live ? row : 0) * int64_t(n);
    RowSplit s = split_row<T, V>(x_row, n);
    const auto* body = reinterpret_cast<const Vec<T, V>*>(x_row + s.head);
    // Head, body and tail of out/weight line up with x's only if they share its phase.
    const bool vec_out = reinterpret_cast<uintptr_t>(out_row + s.head) % 16 == 0;
    const bool vec_wr = vec_w && reinterpret_cast<uintptr_t>(w + s.head) % 16 == 0;

    float head_v = 0.0f, tail_v = 0.0f;
    if (live && g < s.head) {
      head_v = to_float(x_row[g]);
    }
    if (live && g < s.tail) {
      tail_v = to_float(x_row[s.head + s.n_vec * V + g]);
    }
    float sum_sq = head_v * head_v + tail_v * tail_v;

    if constexpr (kChunks > 0) {
      Vec<T, V> cache[kChunks];
#pragma unroll
      for (int k = 0; k < kChunks; ++k) {
        int c = g + k * kGroup;
        if (live && c < s.n_vec) {
          cache[k] = body[c];
#pragma unroll
          for (int j = 0; j < V; ++j) {
            float t = to_float(cache[k].v[j]);
            sum_sq += t * t;
          }
        }
      }
      float inv_rms = rsqrtf(group_reduce<kGroup>(sum_sq, SumOp{}, scratch) / n + p.eps);
      if (live) {
#pragma unroll
        for (int k = 0; k < kChunks; ++k) {
          int c = g + k * kGroup;
          if (c < s.n_vec) {
            store_vec<T, V>(cache[k], c, s.head, inv_rms, w, p.w_step, out_row, vec_out, vec_wr);
          }
        }
      }
      if (live && g < s.head) {
        out_row[g] = finish<T>(head_v, inv_rms, w, g * p.w_step);
      }
      if (live && g < s.tail) {
        int i = s.head + s.n_vec * V + g;
        out_row[i] = finish<T>(tail_v, inv_rms, w, i * p.w_step);
      }
    } else {
      if (live) {
#pragma unroll 4
        for (int c = g; c < s.n_vec; c += kGroup) {
          Vec<T, V> v = body[c];
#pragma unroll
          for (int j = 0; j < V; ++j) {
            float t = to_float(v.v[j]);
            sum_sq += t * t;
          }
        }
      }
      float inv_rms = rsqrtf(group_reduce<kGroup>(sum_sq, SumOp{}, scratch) / n + p.eps);
      if (live) {
#pragma unroll 4
        for (int c = g; c < s.n_vec; c += kGroup) {
          store_vec<T, V>(body[c], c, s.head, inv_rms, w, p.w_step, out_row, vec_out, vec_wr);
        }
        if (g < s.head) {
          out_row[g] = finish<T>(head_v, inv_rms, w, g * p.w_step);
        }
        if (g < s.tail) {
          int i = s.head + s.n_vec * V + g;
          out_row[i] = finish<T>(tail_v, inv_rms, w, i * p.w_step);
        }
      }
    }
  }
}

// Rows whose elements are x_step apart: a block per row, two passes (the second hits L1/L2).
template <typename T, int kBlock>
__global__ void __launch_bounds__(kBlock)
    rms_norm_strided(const __grid_constant__ RMSNormParams p) {
  __shared__ float scratch[32];
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weight);
  T* out = static_cast<T*>(p.out);
  const int n = p.row_size;
  for (int64_t row = blockIdx.x; row < p.n_rows; row += gridDim.x) {
    const T* x_row = x + row_offset(p, row);
    T* out_row = out + row * int64_t(n);
    float sum_sq = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += kBlock) {
      float t = to_float(x_row[i * p.x_step]);
      sum_sq += t * t;
    }
    float inv_rms = rsqrtf(group_reduce<kBlock>(sum_sq, SumOp{}, scratch) / n + p.eps);
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += kBlock) {
      out_row[i] = finish<T>(to_float(x_row[i * p.x_step]), inv_rms, w, i * p.w_step);
    }
  }
}

// Transposed layout: the innermost row axis has stride 1 (rows adjacent), elements x_step
// apart. A block (32 lanes x 8 warps) takes 32 * kRpl adjacent rows: each lane loads kRpl
// neighbouring rows at once (8-byte loads where aligned), the warps walk the elements. Pass 1 sums squares with loads coalesced across rows. Pass 2 re-reads the rows
// in 64-element tiles, from the end backwards (the last elements read are likeliest to be
// in L2), normalises and transposes each tile in shared memory so that the stores are
// contiguous runs of one output row. Traffic: x read twice, out written once.
constexpr int kColsWarps = 8;
constexpr int kColsTile = 128; // elements per row per pass-2 tile (64 measured 8% slower, bf16)

template <typename T, int kRpl>
__global__ void __launch_bounds__(32 * kColsWarps)
    rms_norm_cols(const __grid_constant__ RMSNormParams p) {
  constexpr int kRows = 32 * kRpl;
  using Load = Vec<T, kRpl>;
  __shared__ float partial[kColsWarps][kRows];
  __shared__ float inv_rms[kRows];
  __shared__ T tile[kRows][kColsTile + 1]; // +1: lanes kRpl rows apart hit 2 banks at most
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weight);
  T* out = static_cast<T*>(p.out);
  const int n = p.row_size;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const ColumnTiles<kRows> tiles(p.row_shape[p.row_ndim - 1], p.n_rows);

  for (int64_t t = blockIdx.x; t < tiles.count; t += gridDim.x) {
    const int64_t row0 = tiles.first_row(t);
    const int rows_here = tiles.rows(t);
    // Rows row0 + r of this tile sit at x_lane - lane * kRpl + r (host: kRpl > 1 only if
    // rows_here % kRpl == 0).
    const T* x_lane = x + row_offset(p, row0) + lane * kRpl;
    const bool live = lane * kRpl < rows_here;

    // Each lane sums n / kColsWarps squares of a row in sequence: compensated (Kahan), or a
    // long row's float32 sum drifts by several ulp (seen: 12 ulp at n = 1000, constant rows).
    float sum_sq[kRpl] = {}, carry[kRpl] = {};
    if (live) {
#pragma unroll 16
      for (int i = warp; i < n; i += kColsWarps) {
        Load v = *reinterpret_cast<const Load*>(x_lane + i * p.x_step);
#pragma unroll
        for (int k = 0; k < kRpl; ++k) {
          float f = to_float(v.v[k]);
          float term = f * f - carry[k];
          float next = sum_sq[k] + term;
          carry[k] = (next - sum_sq[k]) - term;
          sum_sq[k] = next;
        }
      }
    }
    __syncthreads(); // the previous tile's readers of inv_rms and tile are done
#pragma unroll
    for (int k = 0; k < kRpl; ++k) {
      partial[warp][lane * kRpl + k] = sum_sq[k];
    }
    __syncthreads();
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      float total = 0.0f;
#pragma unroll
      for (int k = 0; k < kColsWarps; ++k) {
        total += partial[k][r];
      }
      inv_rms[r] = rsqrtf(total / n + p.eps);
    }
    __syncthreads();

    float my_inv[kRpl];
#pragma unroll
    for (int k = 0; k < kRpl; ++k) {
      my_inv[k] = inv_rms[lane * kRpl + k];
    }
    for (int i0 = (n - 1) / kColsTile * kColsTile; i0 >= 0; i0 -= kColsTile) {
      // Load: warp takes elements i0 + warp + 8c; lane takes rows lane * kRpl + k.
#pragma unroll
      for (int cc = 0; cc < kColsTile / kColsWarps; ++cc) {
        int c = warp + cc * kColsWarps, i = i0 + c;
        if (live && i < n) {
          Load v = *reinterpret_cast<const Load*>(x_lane + i * p.x_step);
#pragma unroll
          for (int k = 0; k < kRpl; ++k) {
            tile[lane * kRpl + k][c] = finish<T>(to_float(v.v[k]), my_inv[k], w, i * p.w_step);
          }
        }
      }
      __syncthreads();
      // Store: warp takes rows warp + 8r; lanes cover the tile's elements.
      for (int r = warp; r < rows_here; r += kColsWarps) {
        T* out_row = out + (row0 + r) * int64_t(n) + i0;
#pragma unroll
        for (int cc = 0; cc < kColsTile / 32; ++cc) {
          int c = lane + cc * 32;
          if (i0 + c < n) {
            out_row[c] = tile[r][c];
          }
        }
      }
      __syncthreads();
    }
  }
}

// Transposed layout, rows short enough for shared memory: a block (1024 threads) takes the
// 32 bytes of adjacent rows (8 f32 / 16 half) whole. Pass 1 reads each element's 32-byte
// row group once (4 lanes x 8 bytes), sums squares and keeps it in shared memory; pass 2
// writes the rows from there with 16-byte stores. Traffic: x read once, out written once.
// Host: x_step, the row strides and x are kRpl-aligned, inner % kRows == 0, row_size % 16B.
template <typename T>
__global__ void __launch_bounds__(1024)
    rms_norm_cols_smem(const __grid_constant__ RMSNormParams p) {
  constexpr int kRpl = 8 / sizeof(T); // rows per 8-byte load
  constexpr int kRows = 32 / sizeof(T); // rows per block
  constexpr int kLanesPerCol = kRows / kRpl;
  constexpr int kColsPerStep = 1024 / kLanesPerCol;
  constexpr int kPad = 16 / sizeof(T); // rows stay 16-byte aligned; row groups shift banks
  constexpr int V = 16 / sizeof(T);
  using Load = Vec<T, kRpl>;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float partial[32][kRows];
  __shared__ float inv_rms[kRows];
  T* tile = reinterpret_cast<T*>(smem); // [kRows][row_size + kPad]
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weight);
  T* out = static_cast<T*>(p.out);
  const int n = p.row_size, stride = n + kPad;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = threadIdx.x % kLanesPerCol; // rows group * kRpl ... + kRpl - 1
  const int col0 = threadIdx.x / kLanesPerCol;
  const int64_t n_tiles = p.n_rows / kRows;
  const bool vec_w = w && p.w_step == 1 && reinterpret_cast<uintptr_t>(w) % 16 == 0;

  for (int64_t t = blockIdx.x; t < n_tiles; t += gridDim.x) {
    const int64_t row0 = t * kRows; // inner % kRows == 0: a tile never straddles outer rows
    const T* x_group = x + row_offset(p, row0) + group * kRpl;
    float sum_sq[kRpl] = {};
    __syncthreads(); // the previous tile's pass 2 is done with tile and inv_rms
    // Batches of kBatch loads issued before any is used: the compiler alone kept few in flight.
    constexpr int kBatch = sizeof(T) == 4 ? 16 : 8; // 16 spills for half types (64 registers)
    for (int i0 = col0; i0 < n; i0 += kBatch * kColsPerStep) {
      Load v[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        int i = i0 + b * kColsPerStep;
        if (i < n) {
          v[b] = *reinterpret_cast<const Load*>(x_group + i * p.x_step);
        }
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        int i = i0 + b * kColsPerStep;
        if (i < n) {
#pragma unroll
          for (int k = 0; k < kRpl; ++k) {
            float f = to_float(v[b].v[k]);
            sum_sq[k] += f * f;
            tile[(group * kRpl + k) * stride + i] = v[b].v[k];
          }
        }
      }
    }
#pragma unroll
    for (int k = 0; k < kRpl; ++k) {
#pragma unroll
      for (int o = kLanesPerCol; o < 32; o <<= 1) {
        sum_sq[k] += __shfl_xor_sync(0xffffffffu, sum_sq[k], o);
      }
      if (lane < kLanesPerCol) {
        partial[warp][group * kRpl + k] = sum_sq[k];
      }
    }
    __syncthreads();
    if (threadIdx.x < kRows) {
      float total = 0.0f;
#pragma unroll 8
      for (int k = 0; k < 32; ++k) {
        total += partial[k][threadIdx.x];
      }
      inv_rms[threadIdx.x] = rsqrtf(total / n + p.eps);
    }
    __syncthreads();
    const int chunks_per_row = n / V;
    for (int c = threadIdx.x; c < kRows * chunks_per_row; c += 1024) {
      int r = c / chunks_per_row, j = c - r * chunks_per_row;
      Vec<T, V> xv = *reinterpret_cast<const Vec<T, V>*>(tile + r * stride + j * V);
      store_vec<T, V>(xv, j, 0, inv_rms[r], w, p.w_step, out + (row0 + r) * int64_t(n), true,
                      vec_w);
    }
  }
}

} // namespace mlxr::cuda

// Softmax device code: y = exp(x - max) / sum(exp(x - max)) over each row, float32 arithmetic,
// rounded once to the output dtype (reference/softmax.py). Host: csrc/cuda/softmax.cu.
//
// One kernel: kGroup threads per row (part of a warp, a warp, or the whole block), each holding kItems units
// of kV elements in registers (x read once); kItems == 0 loops over the row twice (online max
// and sum, write) for rows too long for registers. kV = 16 bytes of elements where the row is
// contiguous and aligned, else 1 with each element found through the row's element layout.
// Rows start where the row layout says; the output is row-contiguous.
#pragma once

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"
#include "reduce.cuh"

namespace mlxr::cuda {

struct SoftmaxParams {
  const void* x;
  void* out;
  int64_t n_rows;
  int row_size;
  Layout rows; // row r of x starts at layout_offset(rows, r)
  Layout elems; // element j of a row sits at layout_offset(elems, j)
};

template <typename T, int kV>
__device__ __forceinline__ void load_elems(const SoftmaxParams& p, const T* row, int64_t j, float* v) {
  if constexpr (kV > 1) {
    Vec<T, kV> pack = *reinterpret_cast<const Vec<T, kV>*>(row + j);
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      v[k] = to_float(pack.v[k]);
    }
  } else {
    v[0] = to_float(row[layout_offset(p.elems, j)]);
  }
}

template <typename T, int kV>
__device__ __forceinline__ void store_elems(T* row, int64_t j, const float* v) {
  Vec<T, kV> pack;
#pragma unroll
  for (int k = 0; k < kV; ++k) {
    pack.v[k] = from_float<T>(v[k]);
  }
  *reinterpret_cast<Vec<T, kV>*>(row + j) = pack;
}

// Block: kRowBlock<kGroup> threads, blockDim.x / kGroup rows at a time, grid-stride over rows.
template <typename T, int kGroup, int kItems, int kV>
__global__ void __launch_bounds__(kRowBlock<kGroup>, 1024 / kRowBlock<kGroup>) softmax_rows(const SoftmaxParams p) {
  __shared__ float scratch[kGroup > 32 ? kGroup / 32 : 1];
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const int lane = threadIdx.x % kGroup;
  const int rows_per_block = blockDim.x / kGroup;
  // A block-uniform trip count: sub-warp groups share shuffles and a block shares barriers, so
  // a group past the last row stays in the loop with n = 0 (no loads, no stores).
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * rows_per_block; r0 < p.n_rows;
       r0 += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    const int64_t r = r0 + threadIdx.x / kGroup;
    const int n = r < p.n_rows ? p.row_size : 0;
    const T* row = x + layout_offset(p.rows, r);
    T* out_row = out + r * n;
    if constexpr (kItems > 0) {
      float v[kItems][kV];
      float row_max = -INFINITY;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
          load_elems<T, kV>(p, row, j, v[i]);
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            row_max = fmaxf(row_max, v[i][k]);
          }
        }
      }
      row_max = group_reduce<kGroup>(row_max, MaxOp{}, scratch);
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        if ((static_cast<int64_t>(i) * kGroup + lane) * kV < n) {
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            v[i][k] = expf(v[i][k] - row_max);
            sum += v[i][k];
          }
        }
      }
      sum = group_reduce<kGroup>(sum, SumOp{}, scratch);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            v[i][k] = v[i][k] / sum;
          }
          store_elems<T, kV>(out_row, j, v[i]);
        }
      }
    } else {
      // Online max and sum in one read (the sum rescaled when the running max grows, once a
      // unit), then one read to write: two passes over the row, not three (H100, 64 rows of
      // 128256 float32: 43 us with three passes, 30.6 us for a copy).
      float m = -INFINITY, sum = 0.0f;
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        float v[kV];
        load_elems<T, kV>(p, row, j, v);
        float unit_max = m;
        bool nan = false;
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          unit_max = fmaxf(unit_max, v[k]);
          nan |= isnan(v[k]);
        }
        if (nan) { // a NaN makes the whole row NaN, as the sum of exp(x - max) does
          sum = NAN;
        } else if (unit_max != -INFINITY) { // else all so far is -inf: nothing to add yet
          if (unit_max > m) { // rescale only when the running max grows
            sum = m == -INFINITY ? sum : sum * expf(m - unit_max);
            m = unit_max;
          }
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            sum += expf(v[k] - m);
          }
        }
      }
      const float row_max = group_reduce<kGroup>(m, MaxOp{}, scratch);
      // A lane's sum to the row's max; a lane that saw only -inf (sum 0, or NaN) keeps it.
      sum = m == -INFINITY ? sum : sum * expf(m - row_max);
      sum = group_reduce<kGroup>(sum, SumOp{}, scratch);
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        float v[kV];
        load_elems<T, kV>(p, row, j, v);
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          v[k] = expf(v[k] - row_max) / sum;
        }
        store_elems<T, kV>(out_row, j, v);
      }
    }
  }
}

} // namespace mlxr::cuda

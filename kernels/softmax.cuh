// Softmax device code: y = exp(x - max) / sum(exp(x - max)) over each row, float32 arithmetic
// rounded once to the output dtype (reference/softmax.py; 16-bit outputs take exp2 and a
// reciprocal product: softmax_exp, Normalizer). Host: csrc/cuda/softmax.cu.
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

// kV elements as loaded (16 bytes, or one element through the layout), read as floats.
template <typename T, int kV>
struct RawUnit {
  Vec<T, kV> pack;
  __device__ __forceinline__ void load(const SoftmaxParams& p, const T* row, int64_t j) {
    if constexpr (kV > 1) {
      pack = *reinterpret_cast<const Vec<T, kV>*>(row + j);
    } else {
      pack.v[0] = row[layout_offset(p.elems, j)];
    }
  }
  __device__ __forceinline__ float operator[](int k) const {
    return to_float(pack.v[k]);
  }
};

// The same kV elements as floats in v.
template <typename T, int kV>
__device__ __forceinline__ void load_elems(const SoftmaxParams& p, const T* row, int64_t j, float* v) {
  RawUnit<T, kV> unit;
  unit.load(p, row, j);
#pragma unroll
  for (int k = 0; k < kV; ++k) {
    v[k] = unit[k];
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

// exp for the kernel: expf for float32 output; exp2f(x * log2 e) for 16-bit outputs, whose
// extra error (about |x| float32 ulp) is far below a half ulp of the output (bfloat16 short
// rows: exp and division, not memory, held the kernel at 88 % of copy).
template <typename T>
__device__ __forceinline__ float softmax_exp(float x) {
  if constexpr (sizeof(T) == 4) {
    return expf(x);
  } else {
    return exp2f(x * 1.4426950408889634f);
  }
}

// e / sum: a correctly rounded division for float32 output, a product with the row's
// reciprocal for 16-bit outputs (one float32 rounding more, invisible after the output's).
template <typename T>
struct Normalizer {
  float sum, inv;
  __device__ __forceinline__ explicit Normalizer(float s) : sum(s), inv(1.0f / s) {}
  __device__ __forceinline__ float operator()(float e) const {
    if constexpr (sizeof(T) == 4) {
      return e / sum;
    } else {
      return e * inv;
    }
  }
};

// Units a thread keeps in flight in the looped pass: the online max/sum branches kept the
// compiler from hoisting the next load, so 64 long rows ran at 65-74 % of copy. Half as
// many 16-bit units (twice the elements each): four spilled under the 64-register bound.
template <typename T>
constexpr int kLoopUnroll = sizeof(T) == 4 ? 4 : 2;

// A partial sum of exp(x - m) taken to a larger max; a part that saw only -inf (sum 0, or NaN)
// keeps its sum.
template <typename T>
__device__ __forceinline__ float rescaled(float sum, float m, float to_max) {
  return m == -INFINITY ? sum : sum * softmax_exp<T>(m - to_max);
}

// A thread's online max m and sum of exp(x - m) over the elements j0, j0 + kGroup * kV, ...
// below `end` (units of kV), rescaling the sum when the running max grows, once per
// kLoopUnroll units.
template <typename T, int kGroup, int kV>
__device__ __forceinline__ void online_max_sum(const SoftmaxParams& p, const T* row, int64_t j_first, int64_t end,
                                               float& m, float& sum) {
  constexpr int64_t kStep = int64_t(kGroup) * kV;
  m = -INFINITY;
  sum = 0.0f;
  for (int64_t j0 = j_first; j0 < end; j0 += kLoopUnroll<T> * kStep) {
    RawUnit<T, kV> raw[kLoopUnroll<T>]; // as stored: 16-bit units would spill as floats
#pragma unroll
    for (int u = 0; u < kLoopUnroll<T>; ++u) { // loads first, all in flight together
      if (j0 + u * kStep < end) {
        raw[u].load(p, row, j0 + u * kStep);
      }
    }
    float chunk_max = m;
    bool nan = false;
#pragma unroll
    for (int u = 0; u < kLoopUnroll<T>; ++u) {
      if (j0 + u * kStep < end) {
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          chunk_max = fmaxf(chunk_max, raw[u][k]);
          nan |= isnan(raw[u][k]);
        }
      }
    }
    if (nan) { // a NaN makes the whole row NaN, as the sum of exp(x - max) does
      sum = NAN;
    } else if (chunk_max != -INFINITY) { // else all so far is -inf: nothing to add yet
      if (chunk_max > m) { // rescale only when the running max grows
        sum = rescaled<T>(sum, m, chunk_max);
        m = chunk_max;
      }
#pragma unroll
      for (int u = 0; u < kLoopUnroll<T>; ++u) {
        if (j0 + u * kStep < end) {
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            sum += softmax_exp<T>(raw[u][k] - m);
          }
        }
      }
    }
  }
}

// The second pass over the same elements: y = exp(x - row_max) / sum, row-contiguous out.
template <typename T, int kGroup, int kV>
__device__ __forceinline__ void write_normalised(const SoftmaxParams& p, const T* row, T* out_row, int64_t j_first,
                                                 int64_t end, float row_max, const Normalizer<T>& norm) {
  constexpr int64_t kStep = int64_t(kGroup) * kV;
  for (int64_t j0 = j_first; j0 < end; j0 += kLoopUnroll<T> * kStep) {
    RawUnit<T, kV> raw[kLoopUnroll<T>];
#pragma unroll
    for (int u = 0; u < kLoopUnroll<T>; ++u) {
      if (j0 + u * kStep < end) {
        raw[u].load(p, row, j0 + u * kStep);
      }
    }
#pragma unroll
    for (int u = 0; u < kLoopUnroll<T>; ++u) {
      if (j0 + u * kStep < end) {
        float v[kV];
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          v[k] = norm(softmax_exp<T>(raw[u][k] - row_max));
        }
        store_elems<T, kV>(out_row, j0 + u * kStep, v);
      }
    }
  }
}

// Block: kRowBlock<kGroup> threads, blockDim.x / kGroup rows at a time, grid-stride over rows.
template <typename T, int kGroup, int kItems, int kV>
__global__ void __launch_bounds__(kRowBlock<kGroup>, 1024 / kRowBlock<kGroup>) softmax_rows(const SoftmaxParams p) {
  __shared__ float scratch[kGroup > 32 ? kGroup / 32 : 1];
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const int lane = threadIdx.x % kGroup;
  for (GroupRows<kGroup> rows; rows.more(p.n_rows); rows.next()) {
    const int64_t r = rows.row();
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
            v[i][k] = softmax_exp<T>(v[i][k] - row_max);
            sum += v[i][k];
          }
        }
      }
      const Normalizer<T> norm(group_reduce<kGroup>(sum, SumOp{}, scratch));
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            v[i][k] = norm(v[i][k]);
          }
          store_elems<T, kV>(out_row, j, v[i]);
        }
      }
    } else {
      // Online max and sum in one read, then one read to write: two passes over the row.
      float m, sum;
      online_max_sum<T, kGroup, kV>(p, row, lane * kV, n, m, sum);
      const float row_max = group_reduce<kGroup>(m, MaxOp{}, scratch);
      const Normalizer<T> norm(group_reduce<kGroup>(rescaled<T>(sum, m, row_max), SumOp{}, scratch));
      write_normalised<T, kGroup, kV>(p, row, out_row, lane * kV, n, row_max, norm);
    }
  }
}

} // namespace mlxr::cuda

// Softmax device code: y = exp(x - max) / sum(exp(x - max)) over each row, float32 arithmetic
// rounded once to the output dtype (reference/softmax.py; 16-bit outputs take exp2 and a
// reciprocal product: softmax_exp, Normalizer). Host: csrc/cuda/softmax.cu.
//
// The row kernel: kGroup threads per row (part of a warp, a warp, or the whole block), each holding kItems units
// of kV elements in registers (x read once); kItems == 0 loops over the row twice (online max
// and sum, write) for rows too long for registers. kV = 16 bytes of elements where the row is
// contiguous and aligned, else 1 with each element found through the row's element layout.
// Rows start where the row layout says; the output is row-contiguous. softmax_cols (at the
// end) takes rows that are adjacent in memory instead: a non-last axis.
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
  Normalizer() = default;
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
template <typename T, typename Sum>
__device__ __forceinline__ Sum rescaled(Sum sum, float m, float to_max) {
  return m == -INFINITY ? sum : sum * softmax_exp<T>(m - to_max);
}

// A float32 sum with Kahan compensation, for a thread that adds many terms in sequence (the
// columns kernel: n / 8 a row; equal terms drift ~1e-5 relative over 1024 of them plainly).
struct KahanSum {
  float value, carry;
  __device__ __forceinline__ KahanSum& operator=(float v) {
    value = v;
    carry = 0.0f;
    return *this;
  }
  __device__ __forceinline__ KahanSum& operator+=(float term) {
    const float y = term - carry;
    const float next = value + y;
    carry = (next - value) - y;
    value = next;
    return *this;
  }
  __device__ __forceinline__ KahanSum operator*(float f) const {
    return {value * f, carry * f};
  }
  // carry holds what the last additions lost, negated. Terms are exp(x - max) <= 1, so value
  // stays finite (NaN inputs make both NaN).
  __device__ __forceinline__ float total() const {
    return value - carry;
  }
};

// Folds kUnits units of kV values of one row (value(u, k), where live(u)) into its online max
// m and sum of exp(x - m), rescaling the sum once if the max grows. A NaN makes the sum NaN,
// as the sum of exp(x - max) does; values all -inf so far add nothing.
template <typename T, int kUnits, int kV, typename Sum, typename Value, typename Live>
__device__ __forceinline__ void online_fold(float& m, Sum& sum, Value value, Live live) {
  float chunk_max = m;
  bool nan = false;
#pragma unroll
  for (int u = 0; u < kUnits; ++u) {
    if (live(u)) {
#pragma unroll
      for (int k = 0; k < kV; ++k) {
        chunk_max = fmaxf(chunk_max, value(u, k));
        nan |= isnan(value(u, k));
      }
    }
  }
  if (nan) {
    sum = NAN;
  } else if (chunk_max != -INFINITY) {
    if (chunk_max > m) { // rescale only when the running max grows
      sum = rescaled<T>(sum, m, chunk_max);
      m = chunk_max;
    }
#pragma unroll
    for (int u = 0; u < kUnits; ++u) {
      if (live(u)) {
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          sum += softmax_exp<T>(value(u, k) - m);
        }
      }
    }
  }
}

// A thread's online max m and sum of exp(x - m) over the elements j0, j0 + kGroup * kV, ...
// below `end` (units of kV), folded once per kLoopUnroll units.
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
    online_fold<T, kLoopUnroll<T>, kV>(
        m, sum, [&](int u, int k) { return raw[u][k]; }, [&](int u) { return j0 + u * kStep < end; });
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

// Rows adjacent in memory: a non-last softmax axis reaches the kernel as a transposed view
// (the innermost row axis has stride 1, a row's elements p.elems.strides[0] apart), which the
// row kernels would read one strided element at a time (a quarter of copy speed). A block (32
// lanes x kWarps warps) takes 32 * kRpl adjacent rows: each lane loads kRpl neighbouring rows
// at once, the warps walk the elements, so loads are coalesced across rows. Pass 1 folds each
// thread's elements into an online max and (compensated) sum per row, combined across the
// warps in shared memory. Pass 2 re-reads the rows in tiles of kSoftmaxColsTile elements, from
// the end backwards (the last read are likeliest still in L2), normalises, and transposes each
// tile in shared memory so that the stores are contiguous runs of one output row. Traffic: x
// read twice, out written once (the walk of rms_norm_cols in kernels/rms_norm.cuh).
// kSoftmaxColsWarps warps a block; pass-2 tiles of kSoftmaxColsTile elements a row; pass 1
// keeps kSoftmaxColsBatch loads a thread in flight.
constexpr int kSoftmaxColsWarps = 8, kSoftmaxColsTile = 128, kSoftmaxColsBatch = 4;

template <typename T, int kRpl>
__global__ void __launch_bounds__(32 * kSoftmaxColsWarps) softmax_cols(const SoftmaxParams p) {
  constexpr int kWarps = kSoftmaxColsWarps, kTile = kSoftmaxColsTile, kBatch = kSoftmaxColsBatch;
  constexpr int kRows = 32 * kRpl;
  static_assert(kTile % kWarps == 0, "pass-2 tiles split evenly over the warps");
  using Load = Vec<T, kRpl>;
  __shared__ float part_max[kWarps][kRows], part_sum[kWarps][kRows];
  __shared__ float row_max[kRows], row_sum[kRows];
  __shared__ T tile[kRows][kTile + 1]; // +1: lanes kRpl rows apart hit 2 banks at most
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const int64_t n = p.row_size;
  const int64_t step = p.elems.strides[0];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const ColumnTiles<kRows> tiles(p.rows.shape[p.rows.ndim - 1], p.n_rows);

  for (int64_t t = blockIdx.x; t < tiles.count; t += gridDim.x) {
    const int64_t row0 = tiles.first_row(t);
    const int rows_here = tiles.rows(t);
    // Rows row0 + r of this tile sit at x_lane - lane * kRpl + r (host: kRpl > 1 only if
    // rows_here % kRpl == 0).
    const T* x_lane = x + layout_offset(p.rows, row0) + lane * kRpl;
    const bool live = lane * kRpl < rows_here;

    float m[kRpl];
    KahanSum sum[kRpl];
#pragma unroll
    for (int k = 0; k < kRpl; ++k) {
      m[k] = -INFINITY;
      sum[k] = 0.0f;
    }
    if (live) {
      for (int64_t i0 = warp; i0 < n; i0 += kBatch * kWarps) {
        Load v[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) { // loads first, all in flight together
          if (i0 + b * kWarps < n) {
            v[b] = *reinterpret_cast<const Load*>(x_lane + (i0 + b * kWarps) * step);
          }
        }
#pragma unroll
        for (int k = 0; k < kRpl; ++k) {
          online_fold<T, kBatch, 1>(
              m[k], sum[k], [&](int b, int) { return to_float(v[b].v[k]); },
              [&](int b) { return i0 + b * kWarps < n; });
        }
      }
    }
    // Pass 2 of the previous tile ended on a barrier: part_*, row_* and tile are free.
#pragma unroll
    for (int k = 0; k < kRpl; ++k) {
      part_max[warp][lane * kRpl + k] = m[k];
      part_sum[warp][lane * kRpl + k] = sum[k].total();
    }
    __syncthreads();
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      float top = -INFINITY;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        top = fmaxf(top, part_max[w][r]);
      }
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        total += rescaled<T>(part_sum[w][r], part_max[w][r], top);
      }
      row_max[r] = top;
      row_sum[r] = total;
    }
    __syncthreads();

    float my_max[kRpl];
    Normalizer<T> norm[kRpl];
#pragma unroll
    for (int k = 0; k < kRpl; ++k) {
      my_max[k] = row_max[lane * kRpl + k];
      norm[k] = Normalizer<T>(row_sum[lane * kRpl + k]);
    }
    for (int64_t i0 = (n - 1) / kTile * kTile; i0 >= 0; i0 -= kTile) {
      // Load: warp takes elements i0 + warp + kWarps c; lane takes rows lane * kRpl + k.
#pragma unroll
      for (int cc = 0; cc < kTile / kWarps; ++cc) {
        const int c = warp + cc * kWarps;
        if (live && i0 + c < n) {
          Load v = *reinterpret_cast<const Load*>(x_lane + (i0 + c) * step);
#pragma unroll
          for (int k = 0; k < kRpl; ++k) {
            tile[lane * kRpl + k][c] = from_float<T>(norm[k](softmax_exp<T>(to_float(v.v[k]) - my_max[k])));
          }
        }
      }
      __syncthreads();
      // Store: warp takes rows warp + kWarps r; lanes cover the tile's elements.
      for (int r = warp; r < rows_here; r += kWarps) {
        T* out_row = out + (row0 + r) * n + i0;
#pragma unroll
        for (int cc = 0; cc < kTile / 32; ++cc) {
          const int c = lane + cc * 32;
          if (i0 + c < n) {
            out_row[c] = tile[r][c];
          }
        }
      }
      __syncthreads();
    }
  }
}

} // namespace mlxr::cuda

// RoPE device code: the row at position t of offset group g is rotated by theta_i =
// ((t + offset[g]) * scale) * inv_freq_i (float32, each step rounded as reference/rope.py
// rounds it; -theta for the inverse map), pairs (x[2i], x[2i+1]) when traditional else
// (x[i], x[i + dims/2]); features past dims are copied (left as they are in place). Host
// dispatch: csrc/cuda/rope.cu.
//
// One kernel, templated on the unit a thread moves (RopeUnit): one or two runs of N
// elements, each read as one 16-byte vector (kVector: rows of adjacent, aligned elements) or
// as N = 1 (2 when traditional) scalar loads at any element stride. A thread computes the
// cos/sin of its unit once per (group, position) and applies them to every row sharing them
// (the heads), so sincos is amortised over m_per_block rows (one batch of rows in small
// launches, kEarly); x is read in place in any layout, the output is row-contiguous.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"

namespace mlxr::cuda {

// Leading (row) axes after collapsing; the op builder flattens arrays with more.
constexpr int kRopeMaxRowDims = 6;

struct RopeParams {
  const void* x;
  void* out; // row-contiguous
  const int32_t* offsets; // n_groups of them, offset_step apart
  int64_t offset_step;
  // One offset the host could read when encoding (status available, unified memory): here.
  bool offset_by_value;
  int32_t offset_value;
  const float* inv_freqs; // dims / 2 of them, inv_step apart
  int64_t inv_step;
  int64_t n_t; // positions (axis -2)
  int64_t n_gt; // n_groups * n_t
  int64_t n_m; // rows sharing one (group, position): the product of the axes between
  int64_t m_per_block; // rows of one (group, position) handled by one block (grid y)
  int row_size; // D
  int dims;
  int64_t x_step; // elements between neighbours in a row of x
  float scale;
  bool forward;
  // Logical row r = (g * n_m + m) * n_t + t starts at sum_k idx_k(r) * row_strides[k].
  int row_ndim;
  int64_t row_shape[kRopeMaxRowDims];
  int64_t row_strides[kRopeMaxRowDims];
};

__device__ __forceinline__ int64_t rope_row_offset(const RopeParams& p, int64_t row) {
  return strided_offset(p.row_ndim, p.row_shape, p.row_strides, row);
}

// Offset group g's offset. kEarly: a volatile load, kept after the rows' loads that precede it
// in the source (best effort: without a memory clobber ptxas may still reorder plain loads).
template <bool kEarly>
__device__ __forceinline__ int32_t load_offset(const RopeParams& p, int64_t g) {
  if (p.offset_by_value) {
    return p.offset_value;
  }
  const int32_t* at = p.offsets + g * p.offset_step;
  if constexpr (kEarly) {
    int32_t v;
    asm volatile("ld.global.s32 %0, [%1];" : "=r"(v) : "l"(at));
    return v;
  } else {
    return *at;
  }
}

// Vector units stream (ld/st .cs, evict first): each byte is touched once; 1-1.5 % faster
// prefill than plain loads and stores (H100, csrc/cuda/NOTES.md, eighth session).
template <typename T, int N, bool kVector>
__device__ __forceinline__ Vec<T, N> load_unit(const T* row, int64_t e, int64_t step) {
  if constexpr (kVector) {
    static_assert(sizeof(Vec<T, N>) == sizeof(int4));
    const int4 bits = __ldcs(reinterpret_cast<const int4*>(row + e));
    Vec<T, N> v;
    memcpy(&v, &bits, sizeof(v));
    return v;
  } else {
    Vec<T, N> v;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      v.v[k] = row[(e + k) * step];
    }
    return v;
  }
}

template <typename T, int N, bool kVector>
__device__ __forceinline__ void store_unit(T* row, int64_t e, const Vec<T, N>& v) {
  if constexpr (kVector) {
    int4 bits;
    memcpy(&bits, &v, sizeof(v));
    __stcs(reinterpret_cast<int4*>(row + e), bits);
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      row[e + k] = v.v[k];
    }
  }
}

// (a cos - b sin, a sin + b cos) without FMA contraction: the reference rounds each product.
__device__ __forceinline__ float rot1(float a, float b, float c, float s) {
  return __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
}
__device__ __forceinline__ float rot2(float a, float b, float c, float s) {
  return __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
}

// Rows of one (group, position) loaded kRopeBatch at a time before any is stored, so that
// several loads are in flight whatever the compiler assumes about x and out aliasing; two
// for 8-element units, whose registers would otherwise cap residency at one block per SM.
// Lean kernels take one row at a time and more warps instead (four blocks an SM).
constexpr int rope_batch(int n, bool lean) {
  return lean ? 1 : n >= 8 ? 2 : 4;
}
template <int N, bool kLean>
constexpr int kRopeBatch = rope_batch(N, kLean);

// Pass-through features (D - dims of each row), in a pass of their own after the rotated units
// (inside the rotation's loop, float32 half-rotated rows ran 4 % slower): every lane of a row
// takes the same share of both, so no warp diverges between rotating and copying. Loads in
// flight a thread: kBatch rows of kUnits units each. The lean kernels take two units of their
// one row: half-rotated bf16 +8-10 %, f16 +8 % (f16 traditional -2.5 %; their wide kernels
// with pass-through code spill 16-36 bytes), 256-wide rows with 32 rotated +12-14 %; one unit
// left f16 1-2 % below the old kernel, four spilled more.
template <typename T, int kCopy, bool kVector, int kBatch, int kUnits>
__device__ __forceinline__ void rope_pass_through(const RopeParams& p, const T* x, T* out, int64_t m_begin,
                                                  int64_t m_end, int m_lane, int m_step) {
  const int copy_units = (p.row_size - p.dims) / kCopy;
  const int lanes = blockDim.x;
  for (int64_t gt = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; gt < p.n_gt && copy_units > 0;
       gt += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t g = gt / p.n_t, t = gt - g * p.n_t;
    auto row_of = [&](int64_t m) { return (g * p.n_m + m) * p.n_t + t; };
    for (int c0 = threadIdx.x; c0 < copy_units; c0 += kUnits * lanes) {
      for (int64_t m0 = m_begin + m_lane; m0 < m_end; m0 += kBatch * m_step) {
        Vec<T, kCopy> v[kBatch][kUnits];
#pragma unroll
        for (int j = 0; j < kBatch; ++j) {
          if (m0 + j * m_step < m_end) {
            const T* row = x + rope_row_offset(p, row_of(m0 + j * m_step)) + p.dims * p.x_step;
#pragma unroll
            for (int i = 0; i < kUnits; ++i) {
              if (c0 + i * lanes < copy_units) {
                v[j][i] = load_unit<T, kCopy, kVector>(row, int64_t(c0 + i * lanes) * kCopy, p.x_step);
              }
            }
          }
        }
#pragma unroll
        for (int j = 0; j < kBatch; ++j) {
          if (m0 + j * m_step < m_end) {
            T* orow = out + row_of(m0 + j * m_step) * p.row_size + p.dims;
#pragma unroll
            for (int i = 0; i < kUnits; ++i) {
              if (c0 + i * lanes < copy_units) {
                store_unit<T, kCopy, kVector>(orow, int64_t(c0 + i * lanes) * kCopy, v[j][i]);
              }
            }
          }
        }
      }
    }
  }
}

// How the elements of a thread's unit pair up: (x[i], x[i + dims/2]) in two vectors half the
// rotated span apart (non-traditional); adjacent pairs (x[2i], x[2i+1]) in one vector
// (traditional); or adjacent pairs in two vectors dims/2 apart (traditional, as many bytes in
// flight as non-traditional; needs dims/2 to be whole vectors).
enum class RopeUnit { halves, adjacent, adjacent_split };

// Grid: x over (group, position) pairs (blockDim.y per block, grid-stride), y over chunks of
// m_per_block rows. blockDim.x threads stride over the units of a row.
// kEarly (launches smaller than a wave, i.e. decode): fewer, fuller blocks (threadIdx.z over
// rows), so that few blocks read the offset, which MLX may keep in managed memory read
// across the host link (csrc/cuda/NOTES.md, seventh session).
// kPassThrough false (rows rotated whole, dims == D): no pass-through code, which cost the lean
// kernels registers they spilled.
template <typename T, int N, RopeUnit kUnit, bool kVector, bool kLean, bool kEarly, bool kPassThrough = true>
// Two resident blocks per SM: at one (152 registers for bfloat16) throughput fell by 25-35%;
// at four (64 registers) with batches of rows the vector kernels spill (up to 272 bytes) and
// bf16 prefill slowed from 64-68 to 71-117 us, though at two (111 registers) occupancy is 25 %
// (Nsight Compute). Lean (one row a batch): 62 registers, four blocks (see rope_pass_through
// for the wide ones with pass-through code). kEarly launches are too small for occupancy to
// matter: no register cap.
__global__ void __launch_bounds__(256, kEarly ? 1 : kLean ? 4 : 2) rope_kernel(const RopeParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  constexpr bool kTraditional = kUnit != RopeUnit::halves;
  constexpr bool kTwo = kUnit != RopeUnit::adjacent; // two vectors a unit, dims/2 apart
  constexpr int kVecPairs = kTraditional ? N / 2 : N; // pairs one vector holds
  constexpr int kPairs = kTwo && kTraditional ? 2 * kVecPairs : kVecPairs; // pairs one unit rotates
  constexpr int kCopy = kVector ? N : 1; // elements one pass-through unit copies
  const int half = p.dims / 2;
  const int rot_units = (kTwo ? half : p.dims) / N;
  constexpr int kBatch = kRopeBatch<N, kLean>; // rows' loads a thread keeps in flight
  const int64_t m_begin = static_cast<int64_t>(blockIdx.y) * p.m_per_block;
  const int64_t m_end = m_begin + p.m_per_block < p.n_m ? m_begin + p.m_per_block : p.n_m;
  // kEarly: threadIdx.z also strides over the block's rows (few blocks, so few readers of the
  // offset). Else blockDim.z is 1.
  const int m_lane = kEarly ? threadIdx.z : 0;
  const int m_step = kEarly ? blockDim.z : 1;

  for (int64_t gt = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; gt < p.n_gt;
       gt += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t g = gt / p.n_t, t = gt - g * p.n_t;
    auto position_of = [&] {
      return __fmul_rn(__fadd_rn(static_cast<float>(t), static_cast<float>(load_offset<kEarly>(p, g))), p.scale);
    };
    float position = kEarly ? 0.0f : position_of();
    auto row_of = [&](int64_t m) { return (g * p.n_m + m) * p.n_t + t; };

    for (int u = threadIdx.x; u < rot_units; u += blockDim.x) {
      // Element offsets of the unit's vectors, and the frequency index of each pair.
      const int64_t e1 = int64_t(u) * N;
      const int64_t e2 = e1 + half;
      auto freq_index = [&](int k) {
        if constexpr (kTraditional) {
          return u * (N / 2) + (k < kVecPairs ? k : half / 2 + k - kVecPairs);
        } else {
          return u * N + k;
        }
      };
      Vec<T, N> a[kBatch], b[kBatch];
      auto load_batch = [&](int64_t m0, Vec<T, N>* va, Vec<T, N>* vb) {
#pragma unroll
        for (int j = 0; j < kBatch; ++j) {
          if (m0 + j * m_step < m_end) {
            const T* row = x + rope_row_offset(p, row_of(m0 + j * m_step));
            va[j] = load_unit<T, N, kVector>(row, e1, p.x_step);
            if constexpr (kTwo) {
              vb[j] = load_unit<T, N, kVector>(row, e2, p.x_step);
            }
          }
        }
      };
      float inv_freq[kPairs];
#pragma unroll
      for (int k = 0; k < kPairs; ++k) {
        inv_freq[k] = p.inv_freqs[freq_index(k) * p.inv_step];
      }
      if constexpr (kEarly) {
        load_batch(m_begin + m_lane, a, b);
        position = position_of();
      }
      float c[kPairs], s[kPairs];
#pragma unroll
      for (int k = 0; k < kPairs; ++k) {
        const float theta = __fmul_rn(position, inv_freq[k]);
        sincosf(theta, &s[k], &c[k]);
        s[k] = p.forward ? s[k] : -s[k];
      }
      // Adjacent pairs of v rotated by the sines and cosines from pair k0 on.
      auto rotate_adjacent = [&](const Vec<T, N>& v, int k0) {
        Vec<T, N> y;
#pragma unroll
        for (int k = 0; k < kVecPairs; ++k) {
          float x1 = to_float(v.v[2 * k]), x2 = to_float(v.v[2 * k + 1]);
          y.v[2 * k] = from_float<T>(rot1(x1, x2, c[k0 + k], s[k0 + k]));
          y.v[2 * k + 1] = from_float<T>(rot2(x1, x2, c[k0 + k], s[k0 + k]));
        }
        return y;
      };
      // kEarly: one batch a thread (the host's m_per_block), loaded above.
      for (int64_t m0 = m_begin + m_lane; m0 < m_end; m0 += kBatch * m_step) {
        if constexpr (!kEarly) {
          load_batch(m0, a, b);
        }
#pragma unroll
        for (int j = 0; j < kBatch; ++j) {
          if (m0 + j * m_step < m_end) {
            T* orow = out + row_of(m0 + j * m_step) * p.row_size;
            if constexpr (kTraditional) {
              store_unit<T, N, kVector>(orow, e1, rotate_adjacent(a[j], 0));
              if constexpr (kTwo) {
                store_unit<T, N, kVector>(orow, e2, rotate_adjacent(b[j], kVecPairs));
              }
            } else {
              Vec<T, N> y1, y2;
#pragma unroll
              for (int k = 0; k < kPairs; ++k) {
                float x1 = to_float(a[j].v[k]), x2 = to_float(b[j].v[k]);
                y1.v[k] = from_float<T>(rot1(x1, x2, c[k], s[k]));
                y2.v[k] = from_float<T>(rot2(x1, x2, c[k], s[k]));
              }
              store_unit<T, N, kVector>(orow, e1, y1);
              store_unit<T, N, kVector>(orow, e2, y2);
            }
          }
        }
      }
    }
  }
  // In place (a donated x), the pass-through features are already where they belong.
  if constexpr (kPassThrough) {
    if (p.out != p.x) {
      rope_pass_through<T, kCopy, kVector, kBatch, kLean ? 2 : 1>(p, x, out, m_begin, m_end, m_lane, m_step);
    }
  }
}

} // namespace mlxr::cuda

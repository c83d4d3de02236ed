// LayerNorm device code: y = round(round(round((x - mean) * rsqrt(var + eps)) * w) + b), mean
// and biased variance in float32 from the row held in registers (three passes over registers),
// each weight/bias step rounded to the output dtype (reference/layer_norm.py). Host:
// csrc/cuda/layer_norm.cu.
//
// kGroup threads per row (part of a warp, a warp or the block), kItems units of kV elements each in registers
// (kV = 16 bytes where the row is contiguous and aligned, else 1 with strided loads);
// kItems == 0 loops over the row three times for rows too long for registers.
#pragma once

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"
#include "reduce.cuh"

namespace mlxr::cuda {

struct LayerNormParams {
  const void* x;
  const void* weight; // null: none
  const void* bias; // null: none
  void* out; // row-contiguous
  int64_t n_rows;
  int row_size;
  int64_t x_step, w_step, b_step; // element strides along the row
  bool w_vec, b_vec; // weight / bias rows are 16-byte aligned runs (16-byte loads in vector kernels)
  float eps;
  Layout rows; // row r of x starts at layout_offset(rows, r)
};

// One output element from (x - mean), 1 / std and its weight and bias (see load_params).
template <typename T>
__device__ __forceinline__ T layer_norm_finish(const LayerNormParams& p, float centred, float inv, float w, float b) {
  T y = from_float<T>(__fmul_rn(centred, inv));
  if (p.weight) {
    y = from_float<T>(__fmul_rn(to_float(y), w));
  }
  if (p.bias) {
    y = from_float<T>(__fadd_rn(to_float(y), b));
  }
  return y;
}

// The weight and bias of kV elements from j.
template <typename T, int kV>
__device__ __forceinline__ void layer_norm_params(const LayerNormParams& p, int64_t j, float (&w)[kV], float (&b)[kV]) {
  load_params<T, kV>(p.weight, j, p.w_step, p.w_vec, w);
  load_params<T, kV>(p.bias, j, p.b_step, p.b_vec, b);
}

// The unit of kV elements from j as stored (16-byte load, or one element at j * step).
template <typename T, int kV>
__device__ __forceinline__ Vec<T, kV> load_raw_unit(const T* row, int64_t j, int64_t step) {
  if constexpr (kV > 1) {
    return *reinterpret_cast<const Vec<T, kV>*>(row + j);
  } else {
    Vec<T, 1> unit;
    unit.v[0] = row[j * step];
    return unit;
  }
}

template <typename T, int kV>
__device__ __forceinline__ void load_row_unit(const T* row, int64_t j, int64_t step, float* v) {
  Vec<T, kV> pack = load_raw_unit<T, kV>(row, j, step);
#pragma unroll
  for (int k = 0; k < kV; ++k) {
    v[k] = to_float(pack.v[k]);
  }
}

template <typename T, int kGroup, int kItems, int kV>
__global__ void __launch_bounds__(kRowBlock<kGroup>, 1024 / kRowBlock<kGroup>) layer_norm_rows(const LayerNormParams p) {
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
      // The row stays in registers as stored (half the registers of floats for 2-byte types,
      // which kept bf16 at 52 % of copy) and is converted again in each pass.
      Vec<T, kV> v[kItems];
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
          v[i] = load_raw_unit<T, kV>(row, j, p.x_step);
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            sum += to_float(v[i].v[k]);
          }
        }
      }
      const float mean = group_reduce<kGroup>(sum, SumOp{}, scratch) / n;
      float sum_sq = 0.0f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        if ((static_cast<int64_t>(i) * kGroup + lane) * kV < n) {
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            const float c = to_float(v[i].v[k]) - mean;
            sum_sq += c * c;
          }
        }
      }
      const float inv = rsqrtf(group_reduce<kGroup>(sum_sq, SumOp{}, scratch) / n + p.eps);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
          Vec<T, kV> y;
          float w[kV], b[kV];
          layer_norm_params<T, kV>(p, j, w, b);
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            y.v[k] = layer_norm_finish<T>(p, to_float(v[i].v[k]) - mean, inv, w[k], b[k]);
          }
          *reinterpret_cast<Vec<T, kV>*>(out_row + j) = y;
        }
      }
    } else {
      float sum = 0.0f;
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        float v[kV];
        load_row_unit<T, kV>(row, j, p.x_step, v);
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          sum += v[k];
        }
      }
      const float mean = group_reduce<kGroup>(sum, SumOp{}, scratch) / n;
      float sum_sq = 0.0f;
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        float v[kV];
        load_row_unit<T, kV>(row, j, p.x_step, v);
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          sum_sq += (v[k] - mean) * (v[k] - mean);
        }
      }
      const float inv = rsqrtf(group_reduce<kGroup>(sum_sq, SumOp{}, scratch) / n + p.eps);
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        float v[kV];
        load_row_unit<T, kV>(row, j, p.x_step, v);
        Vec<T, kV> y;
        float w[kV], b[kV];
        layer_norm_params<T, kV>(p, j, w, b);
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          y.v[k] = layer_norm_finish<T>(p, v[k] - mean, inv, w[k], b[k]);
        }
        *reinterpret_cast<Vec<T, kV>*>(out_row + j) = y;
      }
    }
  }
}

} // namespace mlxr::cuda

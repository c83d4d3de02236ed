// Residual add + RMSNorm device code: h = round(x + residual), normed = round(h * rsqrt(mean(h^2)
// + eps)) [then round(normed * w)], float32 accumulation (reference/add_rms_norm.py, with
// kernels/rms_norm.cuh's arithmetic). x and residual are read once, h and normed written once.
// Host: csrc/cuda/add_rms_norm.cu.
//
// kGroup threads per row, kItems units of kV elements in registers (kV = 16 bytes where both
// inputs' rows are contiguous and aligned, else 1); kItems == 0 loops: the first pass writes h
// and sums its squares, the second reads h back (the same thread's own stores).
#pragma once

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"
#include "reduce.cuh"

namespace mlxr::cuda {

struct AddRMSNormParams {
  const void* x;
  const void* residual;
  const void* weight; // null: none
  void* normed; // row-contiguous
  void* h; // row-contiguous
  int64_t n_rows;
  int row_size;
  int64_t x_step, r_step, w_step; // element strides along the row
  bool w_vec; // the weight row is a 16-byte aligned run (16-byte loads in vector kernels)
  float eps;
  Layout x_rows, r_rows; // row r of x / residual starts at layout_offset(*_rows, r)
};

template <typename T, int kV>
__device__ __forceinline__ void add_unit(const T* x_row, const T* r_row, int64_t j, const AddRMSNormParams& p,
                                         Vec<T, kV>& h) {
  if constexpr (kV > 1) {
    Vec<T, kV> a = *reinterpret_cast<const Vec<T, kV>*>(x_row + j);
    Vec<T, kV> b = *reinterpret_cast<const Vec<T, kV>*>(r_row + j);
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      h.v[k] = from_float<T>(__fadd_rn(to_float(a.v[k]), to_float(b.v[k])));
    }
  } else {
    h.v[0] = from_float<T>(__fadd_rn(to_float(x_row[j * p.x_step]), to_float(r_row[j * p.r_step])));
  }
}

// One output element from h, 1 / rms and its weight (see load_params).
template <typename T>
__device__ __forceinline__ T add_rms_norm_finish(const AddRMSNormParams& p, float h, float inv, float w) {
  T normed = from_float<T>(h * inv);
  return p.weight ? from_float<T>(to_float(normed) * w) : normed;
}

template <typename T, int kGroup, int kItems, int kV>
__global__ void __launch_bounds__(kRowBlock<kGroup>, 1024 / kRowBlock<kGroup>) add_rms_norm_rows(const AddRMSNormParams p) {
  __shared__ float scratch[kGroup > 32 ? kGroup / 32 : 1];
  const T* x = static_cast<const T*>(p.x);
  const T* res = static_cast<const T*>(p.residual);
  T* normed = static_cast<T*>(p.normed);
  T* h_out = static_cast<T*>(p.h);
  const int lane = threadIdx.x % kGroup;
  for (GroupRows<kGroup> rows; rows.more(p.n_rows); rows.next()) {
    const int64_t r = rows.row();
    const int n = r < p.n_rows ? p.row_size : 0;
    const T* x_row = x + layout_offset(p.x_rows, r);
    const T* r_row = res + layout_offset(p.r_rows, r);
    T* h_row = h_out + r * n;
    T* n_row = normed + r * n;
    float sum_sq = 0.0f;
    if constexpr (kItems > 0) {
      Vec<T, kV> h[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
          add_unit<T, kV>(x_row, r_row, j, p, h[i]);
          *reinterpret_cast<Vec<T, kV>*>(h_row + j) = h[i];
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            float f = to_float(h[i].v[k]);
            sum_sq += f * f;
          }
        }
      }
      const float inv = rsqrtf(group_reduce<kGroup>(sum_sq, SumOp{}, scratch) / n + p.eps);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t j = (static_cast<int64_t>(i) * kGroup + lane) * kV;
        if (j < n) {
          Vec<T, kV> y;
          float w[kV];
          load_params<T, kV>(p.weight, j, p.w_step, p.w_vec, w);
#pragma unroll
          for (int k = 0; k < kV; ++k) {
            y.v[k] = add_rms_norm_finish<T>(p, to_float(h[i].v[k]), inv, w[k]);
          }
          *reinterpret_cast<Vec<T, kV>*>(n_row + j) = y;
        }
      }
    } else {
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        Vec<T, kV> h;
        add_unit<T, kV>(x_row, r_row, j, p, h);
        *reinterpret_cast<Vec<T, kV>*>(h_row + j) = h;
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          float f = to_float(h.v[k]);
          sum_sq += f * f;
        }
      }
      const float inv = rsqrtf(group_reduce<kGroup>(sum_sq, SumOp{}, scratch) / n + p.eps);
      for (int64_t j = static_cast<int64_t>(lane) * kV; j < n; j += kGroup * kV) {
        Vec<T, kV> h = *reinterpret_cast<const Vec<T, kV>*>(h_row + j);
        Vec<T, kV> y;
        float w[kV];
        load_params<T, kV>(p.weight, j, p.w_step, p.w_vec, w);
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          y.v[k] = add_rms_norm_finish<T>(p, to_float(h.v[k]), inv, w[k]);
        }
        *reinterpret_cast<Vec<T, kV>*>(n_row + j) = y;
      }
    }
  }
}

} // namespace mlxr::cuda

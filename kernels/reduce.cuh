// Row reductions shared by the CUDA row kernels (softmax, layer_norm, add_rms_norm): a row is
// reduced by kGroup threads, a warp (shuffles) or a whole block (shuffles + shared memory).
#pragma once

#include <cmath>
#include <cstdint>

namespace mlxr::cuda {

struct MaxOp {
  static constexpr float kIdentity = -INFINITY;
  __device__ __forceinline__ float operator()(float a, float b) const {
    return fmaxf(a, b);
  }
};
struct SumOp {
  static constexpr float kIdentity = 0.0f;
  __device__ __forceinline__ float operator()(float a, float b) const {
    return a + b;
  }
};

// Threads per block of a row kernel with kGroup threads a row (csrc/cuda/row_configs.h): groups
// up to a warp share 256 threads. The kernels ask for 1024 / kRowBlock resident blocks, i.e. at
// most 64 registers a thread: left free, layer_norm bf16 took 212 and ran at 12 % occupancy
// and 50 % of copy (Nsight Compute, H100).
template <int kGroup>
constexpr int kRowBlock = kGroup > 32 ? kGroup : 256;

// The row loop of the row kernels: groups of kGroup threads take blockDim.x / kGroup rows a
// pass, grid-stride. The trip count is block-uniform (sub-warp groups share shuffles and a
// block shares barriers), so a group past the last row stays in the loop: its row() is then
// >= n_rows and the kernel gives it length 0 (no loads, no stores).
template <int kGroup>
struct GroupRows {
  int per_block; // rows a block takes a pass
  int64_t first; // the block's first row this pass
  __device__ __forceinline__ GroupRows()
      : per_block(blockDim.x / kGroup), first(static_cast<int64_t>(blockIdx.x) * per_block) {}
  __device__ __forceinline__ bool more(int64_t n_rows) const {
    return first < n_rows;
  }
  __device__ __forceinline__ void next() {
    first += static_cast<int64_t>(gridDim.x) * per_block;
  }
  __device__ __forceinline__ int64_t row() const {
    return first + threadIdx.x / kGroup;
  }
};

// Reduction over the kGroup threads of one row (a warp, or the whole block); all get it.
template <int kGroup, typename Op>
__device__ __forceinline__ float group_reduce(float v, Op op, float* scratch) {
#pragma unroll
  for (int o = (kGroup < 32 ? kGroup : 32) / 2; o > 0; o >>= 1) {
    v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  }
  if constexpr (kGroup > 32) {
    constexpr int kWarps = kGroup / 32;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); // scratch may still be read from the previous reduction
    if (lane == 0) {
      scratch[warp] = v;
    }
    __syncthreads();
    v = lane < kWarps ? scratch[lane] : Op::kIdentity;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
  }
  return v;
}

} // namespace mlxr::cuda

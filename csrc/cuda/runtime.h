// Glue between our kernels and MLX's CUDA backend. libmlx links its CUDA runtime privately, so
// our kernels are handed to MLX's command encoder as driver CUfunctions looked up in our own
// runtime, and outputs get device memory from our own stream-ordered pool.
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mlx/array.h"
#include "mlx/backend/cuda/device.h"

namespace mlxr::cuda {

namespace mx = mlx::core;

// Throws std::runtime_error("[mlxr cuda] <what>: <CUDA error>") unless err is cudaSuccess.
void check(cudaError_t err, const char* what);

// The driver function of one of our __global__ kernels on the encoder's device (cached).
CUfunction function(mx::cu::CommandEncoder& encoder, const void* kernel);

// Fresh device memory for `out`, ordered on the encoder's stream. MLX's own
// allocator::malloc returns managed memory, whose first GPU touch page-faults (hundreds of
// ms for a large output). MLXR_CUDA_ALLOC=managed selects MLX's path anyway, for comparison.
void allocate_output(mx::array& out, mx::cu::CommandEncoder& encoder);
// The same memory as a bare buffer of `bytes`, for outputs given another array's layout.
mx::allocator::Data output_data(size_t bytes, mx::cu::CommandEncoder& encoder);

// Dynamic shared memory a block of `kernel` may use on the encoder's device (the opt-in
// maximum less `static_bytes`); the kernel is allowed that much on first call.
int max_dynamic_smem(mx::cu::CommandEncoder& encoder, const void* kernel, int static_bytes);

// The encoder's device's streaming multiprocessors (asked once per device).
int sm_count(mx::cu::CommandEncoder& encoder);

// Grids are capped at 2^30 blocks; the kernels' grid-stride loops cover the rest.
inline unsigned grid_size(int64_t blocks) {
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t(1) << 30));
}

// A per-element parameter row (weight, bias) that vector kernels may read 16 bytes at a time:
// adjacent elements from a 16-byte aligned start (kernels only use it when rows are whole units).
inline bool aligned_run(const void* data, int64_t step) {
  return step == 1 && reinterpret_cast<uintptr_t>(data) % 16 == 0;
}

// The first step of every eval_gpu: true (every output given an empty buffer) when there is
// nothing to compute.
bool no_work(std::vector<mx::array>& outputs);

// Throws "[op] rows longer than 2^31 - 1 elements on the GPU": kernels index rows with int.
void check_row_length(int64_t row_size, const char* op);

// out's memory: a donated row-contiguous `in` of the same item size is overwritten in place
// (callers' kernels read each element before they write it), else fresh pool memory.
// Whether a's buffer is MLX's unified (managed) memory, which the host reads without MLX moving
// it: Buffer::raw_ptr moves a device buffer into unified memory, re-pointing it under kernels
// already encoded (a one-element view of a larger GPU result has one).
bool in_unified_memory(const mx::array& a);

void output_in_place_or_new(mx::array& out, const mx::array& in, mx::cu::CommandEncoder& encoder);

template <typename T>
struct Type {
  using type = T;
};

// The dtype switch every eval_gpu ends with: fn(Type<T>{}, "<dtype name>") for the storage type
// T of float32, float16 or bfloat16; other dtypes throw (the Python layer never sends them).
template <typename Fn>
void dispatch_float(mx::Dtype dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case mx::float32:
      return fn(Type<float>{}, "float32");
    case mx::float16:
      return fn(Type<__half>{}, "float16");
    case mx::bfloat16:
      return fn(Type<__nv_bfloat16>{}, "bfloat16");
    default:
      throw std::runtime_error(std::string("[") + op + "] unsupported dtype reached the CUDA kernel");
  }
}

// Adds kernel(params) to the encoder's graph; `params` is the kernel's single by-value struct.
template <typename Params>
void launch(mx::cu::CommandEncoder& encoder, const void* kernel, dim3 grid, dim3 block,
            Params& params, uint32_t smem_bytes = 0) {
  void* args[] = {&params};
  encoder.add_kernel_node_raw(
      function(encoder, kernel), grid, block, dim3(1, 1, 1), smem_bytes, args);
}

} // namespace mlxr::cuda

// Glue between our kernels and MLX's CUDA backend. libmlx links its CUDA runtime privately, so
// our kernels are handed to MLX's command encoder as driver CUfunctions looked up in our own
// runtime, and outputs get device memory from our own stream-ordered pool.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

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

// Adds kernel(params) to the encoder's graph; `params` is the kernel's single by-value struct.
template <typename Params>
void launch(mx::cu::CommandEncoder& encoder, const void* kernel, dim3 grid, dim3 block,
            Params& params, uint32_t smem_bytes = 0) {
  void* args[] = {&params};
  encoder.add_kernel_node_raw(
      function(encoder, kernel), grid, block, dim3(1, 1, 1), smem_bytes, args);
}

} // namespace mlxr::cuda

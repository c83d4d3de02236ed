// Softmax::eval_gpu on MLX's CUDA backend; device code in kernels/softmax.cuh.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/layout.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "softmax.h"

#include "../../kernels/softmax.cuh"

namespace mlxr {

namespace {

using cuda::SoftmaxParams;

constexpr int64_t kMaxGrid = int64_t(1) << 30; // grid-stride loops cover the rest

struct Config {
  const void* kernel;
  int group, items;
};

template <typename T, int kGroup, int kItems, int kV>
Config config() {
  return {reinterpret_cast<const void*>(&cuda::softmax_rows<T, kGroup, kItems, kV>), kGroup, kItems};
}

// The smallest configuration that holds the row in registers: a warp per row up to 256
// units, then a block per row (4 units a thread at 1024 threads, whose registers are capped
// at 64); longer rows loop (three reads of x).
template <typename T, int kV>
Config pick(int64_t n_units) {
  const Config configs[] = {
      config<T, 32, 2, kV>(), config<T, 32, 8, kV>(), config<T, 256, 8, kV>(), config<T, 1024, 4, kV>(),
  };
  for (const Config& c : configs) {
    if (n_units <= int64_t(c.group) * c.items) {
      return c;
    }
  }
  return config<T, 1024, 0, kV>();
}

template <typename T>
void launch_softmax(mx::cu::CommandEncoder& encoder, SoftmaxParams& p, const char* dtype) {
  constexpr int V = 16 / sizeof(T);
  bool vector = p.elems.ndim == 1 && (p.elems.strides[0] == 1 || p.row_size == 1) && p.row_size % V == 0 &&
      reinterpret_cast<uintptr_t>(p.x) % 16 == 0;
  for (int k = 0; k < p.rows.ndim; ++k) {
    vector = vector && p.rows.strides[k] % V == 0;
  }
  Config c = vector ? pick<T, V>(p.row_size / V) : pick<T, 1>(p.row_size);
  int block = std::max(c.group, 256);
  int rows_per_block = block / c.group;
  int64_t blocks = std::min((p.n_rows + rows_per_block - 1) / rows_per_block, kMaxGrid);
  cuda::launch(encoder, c.kernel, dim3(static_cast<unsigned>(blocks)), dim3(block), p);
  std::string name = std::string("softmax_") + (c.items == 0 ? "looped_" : c.group == 32 ? "warp_" : "block_") +
      (vector ? "" : "strided_") + dtype;
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", name);
}

} // namespace

// Buffers, in the order the encoder sees them: x (input), out. The kernel takes one
// SoftmaxParams by value (kernels/softmax.cuh).
void Softmax::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  auto& encoder = mx::cu::get_command_encoder(stream());
  if (out.size() == 0) {
    out.set_data(mx::allocator::malloc(0));
    return;
  }
  int ndim = static_cast<int>(x.ndim());
  int64_t row_size = 1;
  for (int k = ndim - n_axes_; k < ndim; ++k) {
    row_size *= x.shape(k);
  }
  if (row_size > INT32_MAX) {
    throw std::runtime_error("[softmax] rows longer than 2^31 - 1 elements on the GPU");
  }
  // A donated row-contiguous x is overwritten in place: each thread reads its elements
  // before the row's reductions complete and writes only those elements afterwards.
  if (x.is_donatable() && x.flags().row_contiguous) {
    out.copy_shared_buffer(x);
  } else {
    cuda::allocate_output(out, encoder);
  }

  SoftmaxParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.out = mx::gpu_ptr<void>(out);
  p.row_size = static_cast<int>(row_size);
  p.n_rows = static_cast<int64_t>(x.size()) / row_size;
  p.rows = cuda::collapse_axes({&x}, 0, ndim - n_axes_, "softmax")[0];
  p.elems = cuda::collapse_axes({&x}, ndim - n_axes_, ndim, "softmax")[0];

  encoder.set_input_array(x);
  encoder.set_output_array(out);
  switch (out.dtype()) {
    case mx::float32:
      return launch_softmax<float>(encoder, p, "float32");
    case mx::float16:
      return launch_softmax<__half>(encoder, p, "float16");
    case mx::bfloat16:
      return launch_softmax<__nv_bfloat16>(encoder, p, "bfloat16");
    default:
      throw std::runtime_error("[softmax] unsupported dtype reached the CUDA kernel");
  }
}

} // namespace mlxr

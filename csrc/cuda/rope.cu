// RoPE::eval_gpu on MLX's CUDA backend; device code in kernels/rope.cuh.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda/runtime.h"
#include "kernel_log.h"
#include "rope.h"

#include "../../kernels/rope.cuh"

namespace mlxr {

namespace {

using cuda::RopeParams;

// Leading axes of x (all but the last) with size-1 axes dropped and contiguous neighbours
// merged, so that most layouts address rows as row * stride.
void collapse_rows(const mx::array& x, RopeParams& p) {
  std::vector<std::pair<int64_t, int64_t>> dims; // (size, stride), outermost first
  for (int k = 0; k + 1 < static_cast<int>(x.ndim()); ++k) {
    if (x.shape(k) == 1) {
      continue;
    }
    int64_t size = x.shape(k), stride = x.strides()[k];
    if (!dims.empty() && dims.back().second == size * stride) {
      dims.back() = {dims.back().first * size, stride};
    } else {
      dims.emplace_back(size, stride);
    }
  }
  if (dims.empty()) {
    dims.emplace_back(1, 0);
  }
  if (dims.size() > static_cast<size_t>(cuda::kRopeMaxRowDims)) {
    throw std::runtime_error("[rope] too many row axes for the CUDA kernel");
  }
  p.row_ndim = static_cast<int>(dims.size());
  for (size_t k = 0; k < dims.size(); ++k) {
    p.row_shape[k] = dims[k].first;
    p.row_strides[k] = dims[k].second;
  }
}

constexpr int64_t kMaxGrid = int64_t(1) << 30; // grid-stride loops cover the rest
constexpr int kBlock = 256; // rope_kernel's launch bound (two blocks per SM)

template <typename T, int N, bool kTraditional, bool kVector>
const void* rope_kernel() {
  return reinterpret_cast<const void*>(&cuda::rope_kernel<T, N, kTraditional, kVector>);
}

template <typename T>
void launch_rope(mx::cu::CommandEncoder& encoder, RopeParams& p, bool traditional,
                 uintptr_t x_address, const char* dtype) {
  constexpr int V = 16 / sizeof(T);
  // 16-byte units need adjacent elements, every row start and both halves on 16 bytes.
  int rot_span = traditional ? p.dims : p.dims / 2;
  bool vector = (p.x_step == 1 || p.row_size == 1) && p.row_size % V == 0 && rot_span % V == 0 &&
      x_address % 16 == 0;
  for (int k = 0; k < p.row_ndim; ++k) {
    vector = vector && p.row_strides[k] % V == 0;
  }
  const void* kernel;
  int n, copy;
  if (vector) {
    p.x_step = 1;
    kernel = traditional ? rope_kernel<T, V, true, true>() : rope_kernel<T, V, false, true>();
    n = V;
    copy = V;
  } else {
    kernel = traditional ? rope_kernel<T, 2, true, false>() : rope_kernel<T, 1, false, false>();
    n = traditional ? 2 : 1;
    copy = 1;
  }
  int units = rot_span / n + (p.row_size - p.dims) / copy;
  int threads_x = 1;
  while (threads_x < units && threads_x < kBlock) {
    threads_x *= 2;
  }
  int threads_y = static_cast<int>(std::min<int64_t>(kBlock / threads_x, p.n_gt));
  int64_t blocks_x = std::min((p.n_gt + threads_y - 1) / threads_y, kMaxGrid);
  // Rows sharing one position share its sines and cosines: one block takes as many of them
  // as still leaves ~2048 blocks (a few waves on an H100) to spread over the SMs.
  int64_t m_per_block = std::max<int64_t>(p.n_m, 1);
  auto chunks = [&] { return (p.n_m + m_per_block - 1) / m_per_block; };
  while (m_per_block > 1 && blocks_x * chunks() < 2048) {
    m_per_block = (m_per_block + 1) / 2;
  }
  while (chunks() > 65535) { // grid y limit
    m_per_block *= 2;
  }
  p.m_per_block = m_per_block;
  cuda::launch(encoder, kernel, dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(chunks())),
               dim3(threads_x, threads_y), p);
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", std::string(vector ? "rope_vec_" : "rope_scalar_") + dtype);
}

} // namespace

// Buffers, in the order the encoder sees them: x, offset (int32), inv_freqs (float32)
// (inputs), out. The kernel takes one RopeParams by value (kernels/rope.cuh).
void RoPE::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  const mx::array& offset = inputs[1];
  const mx::array& inv_freqs = inputs[2];
  mx::array& out = outputs[0];
  auto& encoder = mx::cu::get_command_encoder(stream());
  if (out.size() == 0) {
    out.set_data(mx::allocator::malloc(0));
    return;
  }
  if (x.shape(-1) > INT32_MAX) {
    throw std::runtime_error("[rope] rows longer than 2^31 - 1 elements on the GPU");
  }
  if (inv_freqs.dtype() != mx::float32 || offset.dtype() != mx::int32) {
    throw std::runtime_error("[rope] the CUDA kernel takes int32 offsets and float32 frequencies");
  }
  // A donated row-contiguous x is rotated in place: each unit is read by the thread that
  // writes it, before it writes it.
  if (x.is_donatable() && x.flags().row_contiguous) {
    out.copy_shared_buffer(x);
  } else {
    cuda::allocate_output(out, encoder);
  }

  RopeParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.out = mx::gpu_ptr<void>(out);
  p.offsets = mx::gpu_ptr<int32_t>(offset);
  p.offset_step = offset.ndim() ? offset.strides()[0] : 0;
  p.inv_freqs = mx::gpu_ptr<float>(inv_freqs);
  p.inv_step = inv_freqs.ndim() ? inv_freqs.strides()[0] : 0;
  p.row_size = static_cast<int>(x.shape(-1));
  p.dims = dims_;
  p.x_step = x.strides().back();
  p.scale = static_cast<float>(scale_);
  p.forward = forward_;
  int64_t n_rows = static_cast<int64_t>(x.size()) / p.row_size;
  int64_t n_groups = offset.size() > 1 ? static_cast<int64_t>(offset.size()) : 1;
  p.n_t = x.shape(-2);
  p.n_gt = n_groups * p.n_t;
  p.n_m = n_rows / p.n_gt;
  collapse_rows(x, p);

  encoder.set_input_array(x);
  encoder.set_input_array(offset);
  encoder.set_input_array(inv_freqs);
  encoder.set_output_array(out);

  uintptr_t x_address = reinterpret_cast<uintptr_t>(p.x);
  switch (out.dtype()) {
    case mx::float32:
      return launch_rope<float>(encoder, p, traditional_, x_address, "float32");
    case mx::float16:
      return launch_rope<__half>(encoder, p, traditional_, x_address, "float16");
    case mx::bfloat16:
      return launch_rope<__nv_bfloat16>(encoder, p, traditional_, x_address, "bfloat16");
    default:
      throw std::runtime_error("[rope] unsupported dtype reached the CUDA kernel");
  }
}

} // namespace mlxr

// RoPE::eval_gpu on MLX's CUDA backend; device code in kernels/rope.cuh.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda/layout.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "rope.h"

#include "../../kernels/rope.cuh"

namespace mlxr {

namespace {

using cuda::RopeParams;

constexpr int kBlock = 256; // rope_kernel's launch bound

// 16-bit vector kernels run lean (one row a batch, four blocks an SM): bf16 prefill rose from
// 81 to 90-94 % of copy and the (B, T, H, D) view from 1.14-1.17x to 1.34-1.40x mx.fast (H100,
// same build); float32 was no faster that way (93-96 -> 92-93 %).
template <typename T>
constexpr bool rope_lean(bool vector) {
  return sizeof(T) == 2 && vector;
}

using cuda::RopeUnit;

// The instantiation for a launch: small (kEarly) or wide, and for wide vector launches with or
// without pass-through features.
template <typename T, int N, RopeUnit kUnit, bool kVector>
const void* rope_kernel(bool early, bool pass_through) {
  constexpr bool kLean = rope_lean<T>(kVector);
  if (early) {
    return reinterpret_cast<const void*>(&cuda::rope_kernel<T, N, kUnit, kVector, kLean, true>);
  }
  if constexpr (kVector) {
    if (!pass_through) {
      return reinterpret_cast<const void*>(&cuda::rope_kernel<T, N, kUnit, kVector, kLean, false, false>);
    }
  }
  return reinterpret_cast<const void*>(&cuda::rope_kernel<T, N, kUnit, kVector, kLean, false>);
}

template <typename T>
void launch_rope(mx::cu::CommandEncoder& encoder, RopeParams& p, bool traditional,
                 uintptr_t x_address, const char* dtype) {
  constexpr int V = 16 / sizeof(T);
  // 16-byte units need adjacent elements, every row start and the rotated span's vectors on 16
  // bytes. Traditional rows take two vectors dims/2 apart where dims/2 is whole vectors
  // (adjacent_split: as many bytes in flight as non-traditional; prefill 88 -> 95 % of a copy
  // kernel for bf16, the (B, T, H, D) view 74 -> 87 %, raw H100 bench), else one.
  const bool split = traditional && (p.dims / 2) % V == 0;
  const int rot_span = traditional && !split ? p.dims : p.dims / 2;
  bool vector = (p.x_step == 1 || p.row_size == 1) && p.row_size % V == 0 && rot_span % V == 0 &&
      x_address % 16 == 0;
  for (int k = 0; k < p.row_ndim; ++k) {
    vector = vector && p.row_strides[k] % V == 0;
  }
  if (vector) {
    p.x_step = 1;
  }
  const RopeUnit unit = !traditional      ? RopeUnit::halves
      : vector && split ? RopeUnit::adjacent_split
                        : RopeUnit::adjacent;
  const int n = vector ? V : traditional ? 2 : 1;
  const int copy = vector ? V : 1;
  // A row's lanes each take the same share of the rotated units and of the copied ones (a
  // warp mixing both diverged: 12 units of a half-rotated bf16 row ran at 69 % of copy), at
  // most ~4 copied units a lane.
  const int rot_units = (unit == RopeUnit::adjacent ? p.dims : p.dims / 2) / n;
  const int copy_units = (p.row_size - p.dims) / copy;
  int threads_x = 1;
  while ((threads_x < rot_units || threads_x * 4 < copy_units) && threads_x < kBlock) {
    threads_x *= 2;
  }
  int threads_y = static_cast<int>(std::min<int64_t>(kBlock / threads_x, p.n_gt));
  int64_t blocks_x = cuda::grid_size((p.n_gt + threads_y - 1) / threads_y);
  // Rows sharing one position share its sines and cosines: one block takes as many of them
  // as still leaves ~4096 blocks (several waves on an H100) to spread over the SMs, and at
  // least one batch a thread. Against 2048 blocks: prefill +1.2-1.6 % of copy, traditional
  // bf16 -1.7 %; below a batch, half-rotated float32 lost 7 % (H100, NOTES.md, eighth session).
  const int batch = cuda::rope_batch(n, rope_lean<T>(vector));
  int64_t m_per_block = std::max<int64_t>(p.n_m, 1);
  auto chunks = [&] { return (p.n_m + m_per_block - 1) / m_per_block; };
  while (m_per_block > batch && blocks_x * chunks() < 4096) {
    m_per_block = std::max<int64_t>(batch, (m_per_block + 1) / 2);
  }
  // Fewer blocks than SMs (decode): latency-bound. One batch of rows a thread, threadIdx.z
  // over rows, so that few blocks read the offset (the kernel's kEarly).
  const bool early = blocks_x * chunks() < cuda::sm_count(encoder);
  int threads_z = 1;
  if (early) {
    while (threads_z * 2 * threads_x * threads_y <= kBlock && threads_z * 2 <= 64 && threads_z < p.n_m) {
      threads_z *= 2;
    }
    m_per_block = static_cast<int64_t>(threads_z) * batch;
  }
  while (chunks() > 65535) { // grid y limit
    m_per_block *= 2;
  }
  p.m_per_block = m_per_block;
  const bool pass_through = p.dims < p.row_size;
  const void* kernel = !vector ? (traditional ? rope_kernel<T, 2, RopeUnit::adjacent, false>(early, true)
                                              : rope_kernel<T, 1, RopeUnit::halves, false>(early, true))
      : unit == RopeUnit::adjacent_split ? rope_kernel<T, V, RopeUnit::adjacent_split, true>(early, pass_through)
      : unit == RopeUnit::adjacent       ? rope_kernel<T, V, RopeUnit::adjacent, true>(early, pass_through)
                                         : rope_kernel<T, V, RopeUnit::halves, true>(early, pass_through);
  cuda::launch(encoder, kernel, dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(chunks())),
               dim3(threads_x, threads_y, threads_z), p);
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  const char* variant = !vector ? "scalar_" : unit == RopeUnit::adjacent_split ? "vec_split_" : "vec_";
  record_kernel("gpu", {"rope_", variant, early ? "small_" : "", dtype});
}

} // namespace

// Buffers, in the order the encoder sees them: x, offset (int32), inv_freqs (float32)
// (inputs), out. The kernel takes one RopeParams by value (kernels/rope.cuh).
void RoPE::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  const mx::array& offset = inputs[1];
  const mx::array& inv_freqs = inputs[2];
  mx::array& out = outputs[0];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  cuda::check_row_length(x.shape(-1), "rope");
  if (inv_freqs.dtype() != mx::float32 || offset.dtype() != mx::int32) {
    throw std::runtime_error("[rope] the CUDA kernel takes int32 offsets and float32 frequencies");
  }
  // A donated row-contiguous x is rotated in place: each unit is read by the thread that
  // writes it, before it writes it.
  cuda::output_in_place_or_new(out, x, encoder);

  RopeParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.out = mx::gpu_ptr<void>(out);
  p.offsets = mx::gpu_ptr<int32_t>(offset);
  p.offset_step = offset.ndim() ? offset.strides()[0] : 0;
  // MLX keeps arrays of <= 8 bytes in managed memory that the GPU reads across the host link:
  // every block reading a Python int's offset cost 2.5-3.5 us a prefill call (raw H100 bench).
  // One offset the host can read now (status available: a constant, or a result something has
  // waited on; never one this graph computes) in unified memory (so data() moves nothing)
  // goes to the kernel by value instead.
  if (offset.size() == 1 && offset.status() == mx::array::Status::available && cuda::in_unified_memory(offset)) {
    p.offset_by_value = true;
    p.offset_value = offset.data<int32_t>()[0];
  }
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
  cuda::collapse_rows(x, p.row_ndim, p.row_shape, p.row_strides, "rope");

  encoder.set_input_array(x);
  encoder.set_input_array(offset);
  encoder.set_input_array(inv_freqs);
  encoder.set_output_array(out);

  uintptr_t x_address = reinterpret_cast<uintptr_t>(p.x);
  cuda::dispatch_float(out.dtype(), "rope", [&](auto type, const char* dtype) {
    launch_rope<typename decltype(type)::type>(encoder, p, traditional_, x_address, dtype);
  });
}

} // namespace mlxr

// SwiGLU::eval_gpu on MLX's CUDA backend; device code in kernels/swiglu.cuh.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/layout.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "swiglu.h"

#include "../../kernels/swiglu.cuh"

namespace mlxr {

namespace {

using cuda::SwiGLUParams;

constexpr int kBlock = 256;

unsigned grid_for(int64_t work) {
  return cuda::grid_size((work + kBlock - 1) / kBlock);
}

// Every element stored once, no broadcast or negative strides (as the CPU kernel decides).
bool dense(const mx::array& a) {
  if (!a.flags().contiguous || a.data_size() != a.size()) {
    return false;
  }
  return std::all_of(a.strides().begin(), a.strides().end(), [](int64_t s) { return s >= 0; });
}

template <typename T>
void launch_swiglu(mx::cu::CommandEncoder& encoder, SwiGLUParams& p, bool flat, const char* dtype) {
  const char* variant;
  if (flat) {
    constexpr int V = 16 / sizeof(T);
    auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
    if (p.size % V == 0 && aligned(p.gate) && aligned(p.up) && aligned(p.out)) {
      cuda::launch(encoder, reinterpret_cast<const void*>(&cuda::swiglu_flat<T, V>),
                   dim3(grid_for(p.size / V)), dim3(kBlock), p);
      variant = "vec_";
    } else {
      cuda::launch(encoder, reinterpret_cast<const void*>(&cuda::swiglu_flat<T, 1>),
                   dim3(grid_for(p.size)), dim3(kBlock), p);
      variant = "flat_";
    }
  } else {
    cuda::launch(encoder, reinterpret_cast<const void*>(&cuda::swiglu_strided<T>),
                 dim3(grid_for(p.size)), dim3(kBlock), p);
    variant = "strided_";
  }
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", {"swiglu_", variant, dtype});
}

} // namespace

// Buffers, in the order the encoder sees them: gate, up (inputs), out. The kernels take one
// SwiGLUParams by value (kernels/swiglu.cuh).
void SwiGLU::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& gate = inputs[0];
  const mx::array& up = inputs[1];
  mx::array& out = outputs[0];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  // Same-layout dense inputs give the output their layout (one flat span); elementwise, so a
  // donated input is overwritten in place. Otherwise the output is row-contiguous.
  bool flat = dense(gate) && dense(up) && gate.strides() == up.strides();
  if (flat && gate.is_donatable() && gate.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(gate);
  } else if (flat && up.is_donatable() && up.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(up);
  } else if (flat) {
    out.set_data(cuda::output_data(gate.data_size() * out.itemsize(), encoder), gate.data_size(),
                 gate.strides(), gate.flags());
  } else {
    cuda::allocate_output(out, encoder);
  }

  SwiGLUParams p = {};
  p.gate = mx::gpu_ptr<void>(gate);
  p.up = mx::gpu_ptr<void>(up);
  p.out = mx::gpu_ptr<void>(out);
  p.size = flat ? static_cast<int64_t>(gate.data_size()) : static_cast<int64_t>(out.size());
  if (!flat) {
    auto layouts = cuda::collapse_axes({&gate, &up}, 0, static_cast<int>(gate.ndim()), "swiglu");
    p.gate_layout = layouts[0];
    p.up_layout = layouts[1];
  }
  encoder.set_input_array(gate);
  encoder.set_input_array(up);
  encoder.set_output_array(out);

  cuda::dispatch_float(out.dtype(), "swiglu", [&](auto type, const char* dtype) {
    launch_swiglu<typename decltype(type)::type>(encoder, p, flat, dtype);
  });
}

} // namespace mlxr

// AddRMSNorm::eval_gpu on MLX's CUDA backend; device code in kernels/add_rms_norm.cuh.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "add_rms_norm.h"
#include "cuda/layout.h"
#include "cuda/row_configs.h"
#include "cuda/runtime.h"
#include "kernel_log.h"

#include "../../kernels/add_rms_norm.cuh"

namespace mlxr {

namespace {

using cuda::AddRMSNormParams;

template <typename T, int kV>
struct AddRMSNormKernel {
  template <int kGroup, int kItems>
  struct Of {
    static const void* get() {
      return reinterpret_cast<const void*>(&cuda::add_rms_norm_rows<T, kGroup, kItems, kV>);
    }
  };
};

template <typename T>
void launch_add_rms_norm(mx::cu::CommandEncoder& encoder, AddRMSNormParams& p, const char* dtype) {
  constexpr int V = 16 / sizeof(T);
  auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  bool vector = p.x_step == 1 && p.r_step == 1 && p.row_size % V == 0 && aligned(p.x) && aligned(p.residual);
  for (int k = 0; k < p.x_rows.ndim; ++k) {
    vector = vector && p.x_rows.strides[k] % V == 0 && p.r_rows.strides[k] % V == 0;
  }
  cuda::RowConfig c = vector ? cuda::pick_row_config<AddRMSNormKernel<T, V>::template Of>(p.row_size / V)
                             : cuda::pick_row_config<AddRMSNormKernel<T, 1>::template Of>(p.row_size);
  cuda::launch(encoder, c.kernel, dim3(c.grid(p.n_rows)), dim3(c.block()), p);
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", {"add_rms_norm_", c.variant(vector), dtype});
}

} // namespace

// Buffers, in the order the encoder sees them: x, residual, weight (optional) (inputs), normed,
// h (outputs). The kernels take one AddRMSNormParams by value (kernels/add_rms_norm.cuh).
void AddRMSNorm::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  const mx::array& residual = inputs[1];
  mx::array& normed = outputs[0];
  mx::array& h = outputs[1];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  cuda::check_row_length(x.shape(-1), "add_rms_norm");
  cuda::allocate_output(normed, encoder);
  cuda::allocate_output(h, encoder);
  AddRMSNormParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.residual = mx::gpu_ptr<void>(residual);
  p.normed = mx::gpu_ptr<void>(normed);
  p.h = mx::gpu_ptr<void>(h);
  p.row_size = static_cast<int>(x.shape(-1));
  p.n_rows = static_cast<int64_t>(x.size()) / p.row_size;
  p.x_step = x.strides().back();
  p.r_step = residual.strides().back();
  p.eps = static_cast<float>(eps_);
  int row_axes = static_cast<int>(x.ndim()) - 1;
  p.x_rows = cuda::collapse_axes({&x}, 0, row_axes, "add_rms_norm")[0];
  p.r_rows = cuda::collapse_axes({&residual}, 0, row_axes, "add_rms_norm")[0];
  encoder.set_input_array(x);
  encoder.set_input_array(residual);
  if (has_weight_) {
    const mx::array& w = inputs[2];
    p.weight = mx::gpu_ptr<void>(w);
    p.w_step = w.ndim() ? w.strides().back() : 0;
    p.w_vec = cuda::aligned_run(p.weight, p.w_step);
    encoder.set_input_array(w);
  }
  encoder.set_output_array(normed);
  encoder.set_output_array(h);
  cuda::dispatch_float(normed.dtype(), "add_rms_norm", [&](auto type, const char* dtype) {
    launch_add_rms_norm<typename decltype(type)::type>(encoder, p, dtype);
  });
}

} // namespace mlxr

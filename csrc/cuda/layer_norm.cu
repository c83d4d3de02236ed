// LayerNorm::eval_gpu on MLX's CUDA backend; device code in kernels/layer_norm.cuh.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/layout.h"
#include "cuda/row_configs.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "layer_norm.h"

#include "../../kernels/layer_norm.cuh"

namespace mlxr {

namespace {

using cuda::LayerNormParams;

template <typename T, int kV>
struct LayerNormKernel {
  template <int kGroup, int kItems>
  struct Of {
    static const void* get() {
      return reinterpret_cast<const void*>(&cuda::layer_norm_rows<T, kGroup, kItems, kV>);
    }
  };
};

template <typename T>
void launch_layer_norm(mx::cu::CommandEncoder& encoder, LayerNormParams& p, const char* dtype) {
  constexpr int V = 16 / sizeof(T);
  bool vector = p.x_step == 1 && p.row_size % V == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0;
  for (int k = 0; k < p.rows.ndim; ++k) {
    vector = vector && p.rows.strides[k] % V == 0;
  }
  cuda::RowConfig c = vector ? cuda::pick_row_config<LayerNormKernel<T, V>::template Of>(p.row_size / V)
                             : cuda::pick_row_config<LayerNormKernel<T, 1>::template Of>(p.row_size);
  cuda::launch(encoder, c.kernel, dim3(c.grid(p.n_rows)), dim3(c.block()), p);
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", {"layer_norm_", c.variant(vector), dtype});
}

} // namespace

// Buffers, in the order the encoder sees them: x, weight (optional), bias (optional) (inputs),
// out. The kernels take one LayerNormParams by value (kernels/layer_norm.cuh).
void LayerNorm::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  cuda::check_row_length(x.shape(-1), "layer_norm");
  // A donated row-contiguous x is overwritten in place: each thread reads its elements before
  // the row's reductions complete and writes only those elements afterwards.
  cuda::output_in_place_or_new(out, x, encoder);
  LayerNormParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.out = mx::gpu_ptr<void>(out);
  p.row_size = static_cast<int>(x.shape(-1));
  p.n_rows = static_cast<int64_t>(x.size()) / p.row_size;
  p.x_step = x.strides().back();
  p.eps = static_cast<float>(eps_);
  p.rows = cuda::collapse_axes({&x}, 0, static_cast<int>(x.ndim()) - 1, "layer_norm")[0];
  encoder.set_input_array(x);
  size_t next = 1;
  if (has_weight_) {
    const mx::array& w = inputs[next++];
    p.weight = mx::gpu_ptr<void>(w);
    p.w_step = w.ndim() ? w.strides().back() : 0;
    p.w_vec = cuda::aligned_run(p.weight, p.w_step);
    encoder.set_input_array(w);
  }
  if (has_bias_) {
    const mx::array& b = inputs[next++];
    p.bias = mx::gpu_ptr<void>(b);
    p.b_step = b.ndim() ? b.strides().back() : 0;
    p.b_vec = cuda::aligned_run(p.bias, p.b_step);
    encoder.set_input_array(b);
  }
  encoder.set_output_array(out);
  cuda::dispatch_float(out.dtype(), "layer_norm", [&](auto type, const char* dtype) {
    launch_layer_norm<typename decltype(type)::type>(encoder, p, dtype);
  });
}

} // namespace mlxr

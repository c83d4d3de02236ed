#include "quantized_matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/convert.h"
#include "cpu/quantized_matmul.h"
#include "cpu/rows.h"
#include "kernel_log.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"

namespace mlxr {

namespace {

// Rows of `a` (any strides) as one row-contiguous buffer of T; no copy when already so.
template <typename T>
const T* row_contiguous_data(const mx::array& a, std::vector<T>& scratch) {
  if (a.flags().row_contiguous) {
    return a.data<T>();
  }
  cpu::RowWalker rows(a);
  int64_t row_size = a.ndim() ? a.shape(-1) : 1;
  int64_t n_rows = row_size ? static_cast<int64_t>(a.size()) / row_size : 0;
  scratch.resize(a.size());
  const T* src = a.data<T>();
  for (int64_t r = 0; r < n_rows; ++r) {
    const T* row = src + rows.offset(r);
    for (int64_t i = 0; i < row_size; ++i) {
      scratch[r * row_size + i] = row[i * rows.step()];
    }
  }
  return scratch.data();
}

// x (any strides, storage dtype of D) as a row-contiguous float32 M x K matrix.
template <typename D>
std::vector<float> x_as_float(const mx::array& x, int64_t M, int64_t K) {
  using S = typename D::storage;
  std::vector<float> out(M * K);
  cpu::RowWalker rows(x);
  const S* src = x.data<S>();
  for (int64_t r = 0; r < M; ++r) {
    const S* row = src + rows.offset(r);
    if constexpr (std::is_same_v<D, cpu::F32>) {
      for (int64_t i = 0; i < K; ++i) {
        out[r * K + i] = row[i * rows.step()];
      }
    } else {
      cpu::to_float32<D>(row, rows.step(), out.data() + r * K, K);
    }
  }
  return out;
}

template <typename D>
void run_quantized_matmul(const mx::array& x, const mx::array& w, const mx::array& scales,
                          const mx::array& biases, mx::array& out, bool transpose,
                          int group_size, int bits, const std::string& dtype_name) {
  using S = typename D::storage;
  const int64_t K = x.shape(-1);
  const int64_t N = out.shape(-1);
  const int64_t M = K ? static_cast<int64_t>(x.size()) / K : static_cast<int64_t>(out.size()) / std::max<int64_t>(N, 1);
  std::vector<float> xf = x_as_float<D>(x, M, K);
  std::vector<uint32_t> w_scratch;
  std::vector<S> scales_scratch, biases_scratch;
  std::vector<float> out_f32;
  float* out_ptr;
  if constexpr (std::is_same_v<D, cpu::F32>) {
    out_ptr = out.data<float>();
  } else {
    out_f32.resize(M * N);
    out_ptr = out_f32.data();
  }
  cpu::QuantizedMatmulArgs args{
      xf.data(),
      row_contiguous_data<uint32_t>(w, w_scratch),
      row_contiguous_data<S>(scales, scales_scratch),
      row_contiguous_data<S>(biases, biases_scratch),
      out_ptr,
      M,
      N,
      K,
      group_size,
      bits,
      transpose};
  const char* variant = cpu::quantized_matmul<D>(args);
  if constexpr (!std::is_same_v<D, cpu::F32>) {
    cpu::from_float32<D>(out_f32.data(), out.data<S>(), M * N);
  }
  record_kernel("cpu", {"quantized_matmul_", variant, "_", dtype_name});
}

} // namespace

void QuantizedMatmul::eval_cpu(
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs) {
  mx::array& out = outputs[0];
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (const auto& in : inputs) {
    encoder.set_input_array(in);
  }
  encoder.set_output_array(out);
  encoder.dispatch([x = mx::array::unsafe_weak_copy(inputs[0]),
                    w = mx::array::unsafe_weak_copy(inputs[1]),
                    scales = mx::array::unsafe_weak_copy(inputs[2]),
                    biases = mx::array::unsafe_weak_copy(inputs[3]),
                    out = mx::array::unsafe_weak_copy(out),
                    transpose = transpose_,
                    group_size = group_size_,
                    bits = bits_]() mutable {
    switch (out.dtype()) {
      case mx::float32:
        return run_quantized_matmul<cpu::F32>(x, w, scales, biases, out, transpose, group_size,
                                              bits, "float32");
      case mx::float16:
        return run_quantized_matmul<cpu::F16>(x, w, scales, biases, out, transpose, group_size,
                                              bits, "float16");
      case mx::bfloat16:
        return run_quantized_matmul<cpu::BF16>(x, w, scales, biases, out, transpose, group_size,
                                               bits, "bfloat16");
      default:
        throw std::runtime_error("[quantized_matmul] unsupported dtype reached the CPU kernel");
    }
  });
}

std::vector<mx::array> QuantizedMatmul::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>& outputs) {
  std::vector<int> param_argnums;
  for (int arg : argnums) {
    if (arg == 1) {
      throw std::invalid_argument(
          "[quantized_matmul] the quantized weights w are not differentiable "
          "(gradients exist for x, scales and biases)");
    }
    if (arg > 1) {
      param_argnums.push_back(arg);
    }
  }
  std::vector<mx::array> param_grads;
  if (!param_argnums.empty()) {
    param_grads = FusedPrimitive::vjp(primals, cotangents, param_argnums, outputs);
  }
  std::vector<mx::array> grads;
  size_t next_param = 0;
  for (int arg : argnums) {
    if (arg == 0) {
      grads.push_back(quantized_matmul(cotangents[0], primals[1], primals[2], primals[3],
                                       !transpose_, group_size_, bits_, fallback(), stream()));
    } else {
      grads.push_back(param_grads[next_param++]);
    }
  }
  return grads;
}

std::vector<mx::array> QuantizedMatmul::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  const mx::array* t_x = nullptr;
  const mx::array* t_scales = nullptr;
  const mx::array* t_biases = nullptr;
  for (size_t i = 0; i < argnums.size(); ++i) {
    switch (argnums[i]) {
      case 0: t_x = &tangents[i]; break;
      case 2: t_scales = &tangents[i]; break;
      case 3: t_biases = &tangents[i]; break;
      default:
        throw std::invalid_argument(
            "[quantized_matmul] the quantized weights w are not differentiable");
    }
  }
  std::vector<mx::array> terms;
  if (t_x) {
    terms.push_back(quantized_matmul(*t_x, primals[1], primals[2], primals[3], transpose_,
                                     group_size_, bits_, fallback(), stream()));
  }
  if (t_scales || t_biases) {
    mx::array ds = t_scales ? *t_scales : mx::zeros_like(primals[2], stream());
    mx::array db = t_biases ? *t_biases : mx::zeros_like(primals[3], stream());
    terms.push_back(quantized_matmul(primals[0], primals[1], ds, db, transpose_, group_size_,
                                     bits_, fallback(), stream()));
  }
  return {terms.size() == 1 ? terms[0] : mx::add(terms[0], terms[1], stream())};
}

std::pair<std::vector<mx::array>, std::vector<int>> QuantizedMatmul::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  if (axes[1] >= 0 || axes[2] >= 0 || axes[3] >= 0) {
    return FusedPrimitive::vmap(inputs, axes);
  }
  // The batch axis of x goes to the front; the contracted axis stays last.
  mx::array x = mx::moveaxis(inputs[0], axes[0], 0, stream());
  return {{quantized_matmul(x, inputs[1], inputs[2], inputs[3], transpose_, group_size_, bits_,
                            fallback(), stream())},
          {0}};
}

bool QuantizedMatmul::is_equivalent(const mx::Primitive& other) const {
  auto* o = dynamic_cast<const QuantizedMatmul*>(&other);
  return o && transpose_ == o->transpose_ && group_size_ == o->group_size_ && bits_ == o->bits_;
}

std::vector<mx::Shape> QuantizedMatmul::output_shapes(const std::vector<mx::array>& inputs) {
  const mx::array& w = inputs[1];
  mx::Shape shape = inputs[0].shape();
  shape.back() = transpose_ ? w.shape(-2) : w.shape(-1) * 32 / bits_;
  return {shape};
}

mx::array quantized_matmul(
    const mx::array& x,
    const mx::array& w,
    const mx::array& scales,
    const mx::array& biases,
    bool transpose,
    int group_size,
    int bits,
    Fallback fallback,
    mx::Stream stream) {
  mx::Shape shape = x.shape();
  shape.back() = transpose ? w.shape(-2) : w.shape(-1) * 32 / bits;
  std::vector<mx::array> inputs{x, w, scales, biases};
#ifdef MLXR_METAL
  // The Metal kernels read row-contiguous buffers (a no-op copy for mx.quantize output and
  // contiguous x); an empty contraction never reaches them.
  if (stream.device == mx::Device::gpu) {
    if (x.shape(-1) == 0) {
      return mx::zeros(shape, x.dtype(), stream);
    }
    for (auto& in : inputs) {
      in = mx::contiguous(in, false, stream);
    }
  }
#endif
  return mx::array(
      std::move(shape),
      x.dtype(),
      std::make_shared<QuantizedMatmul>(stream, std::move(fallback), transpose, group_size, bits),
      std::move(inputs));
}

} // namespace mlxr

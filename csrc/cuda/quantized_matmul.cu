// QuantizedMatmul::eval_gpu on MLX's CUDA backend; device code in kernels/quantized_matmul.cuh.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/layout.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "quantized_matmul.h"

#include "../../kernels/quantized_matmul.cuh"

namespace mlxr {

namespace {

using cuda::QmmParams;

// Rows up to this count take the GEMV kernels (weights streamed once per 8 rows); more take
// the tiled kernel, which reads each weight once per 64 rows.
constexpr int64_t kGemvMaxRows = 16;

template <typename T, int kBits, bool kVec>
const void* qmv_t_kernel(int rows) {
  if (rows == 1) {
    return reinterpret_cast<const void*>(&cuda::qmv_t<T, kBits, 1, kVec>);
  }
  if (rows <= 4) {
    return reinterpret_cast<const void*>(&cuda::qmv_t<T, kBits, 4, kVec>);
  }
  return reinterpret_cast<const void*>(&cuda::qmv_t<T, kBits, 8, kVec>);
}

template <typename T, int kBits>
const void* qmv_n_kernel(int rows) {
  if (rows == 1) {
    return reinterpret_cast<const void*>(&cuda::qmv_n<T, kBits, 1>);
  }
  if (rows <= 4) {
    return reinterpret_cast<const void*>(&cuda::qmv_n<T, kBits, 4>);
  }
  return reinterpret_cast<const void*>(&cuda::qmv_n<T, kBits, 8>);
}

// 16-byte loads in qmv_t: every w row and every x row starts on 16 bytes and runs on.
template <typename T>
bool qmv_t_vectorizable(const QmmParams& p) {
  auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  constexpr int V = 16 / sizeof(T);
  bool ok = p.w_cs == 1 && p.w_rs % 4 == 0 && aligned(p.w) && p.x_step == 1 && aligned(p.x);
  for (int k = 0; k < p.x_rows.ndim; ++k) {
    ok = ok && p.x_rows.strides[k] % V == 0;
  }
  return ok;
}

template <typename T, int kBits>
void launch_qmm(mx::cu::CommandEncoder& encoder, QmmParams& p, bool transpose, const char* dtype) {
  const char* variant;
  if (p.M <= kGemvMaxRows) {
    int rows = p.M == 1 ? 1 : p.M <= 4 ? 4 : 8;
    unsigned grid_y = static_cast<unsigned>((p.M + rows - 1) / rows);
    if (transpose) {
      constexpr int kColsPerBlock = cuda::kQmvTWarps * cuda::kQmvTCols;
      const void* kernel = qmv_t_vectorizable<T>(p) ? qmv_t_kernel<T, kBits, true>(rows)
                                                    : qmv_t_kernel<T, kBits, false>(rows);
      cuda::launch(encoder, kernel, dim3((p.N + kColsPerBlock - 1) / kColsPerBlock, grid_y),
                   dim3(32 * cuda::kQmvTWarps), p);
    } else {
      cuda::launch(encoder, qmv_n_kernel<T, kBits>(rows), dim3(p.N / 32, grid_y), dim3(32 * cuda::kQmvNWarps), p);
    }
    variant = "gemv_";
  } else {
    const void* kernel = transpose ? reinterpret_cast<const void*>(&cuda::qmm<T, kBits, true>)
                                   : reinterpret_cast<const void*>(&cuda::qmm<T, kBits, false>);
    int64_t tiles_m = (p.M + cuda::kQmmBM - 1) / cuda::kQmmBM;
    if (tiles_m > 65535) {
      throw std::runtime_error("[quantized_matmul] more than 2^22 rows for the CUDA kernel");
    }
    cuda::launch(encoder, kernel, dim3((p.N + cuda::kQmmBN - 1) / cuda::kQmmBN, static_cast<unsigned>(tiles_m)),
                 dim3(cuda::kQmmThreads), p);
    variant = "gemm_";
  }
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", {"quantized_matmul_", variant, dtype});
}

} // namespace

// Buffers, in the order the encoder sees them: x, w, scales, biases (inputs), out. The
// kernels take one QmmParams by value (kernels/quantized_matmul.cuh); w is 2-D (the Python
// layer sends batched w to the reference) and x, scales, biases have the output dtype.
void QuantizedMatmul::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  const mx::array& w = inputs[1];
  const mx::array& scales = inputs[2];
  const mx::array& biases = inputs[3];
  mx::array& out = outputs[0];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  const int64_t K = x.shape(-1);
  const int64_t N = out.shape(-1);
  cuda::check_row_length(K, "quantized_matmul");
  cuda::check_row_length(N, "quantized_matmul");
  cuda::allocate_output(out, encoder);

  QmmParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.w = mx::gpu_ptr<uint32_t>(w);
  p.scales = mx::gpu_ptr<void>(scales);
  p.biases = mx::gpu_ptr<void>(biases);
  p.out = mx::gpu_ptr<void>(out);
  p.M = static_cast<int64_t>(out.size()) / N;
  p.N = static_cast<int>(N);
  p.K = static_cast<int>(K);
  p.group_size = group_size_;
  p.x_step = x.strides().back();
  p.x_rows = cuda::collapse_axes({&x}, 0, static_cast<int>(x.ndim()) - 1, "quantized_matmul")[0];
  p.w_rs = w.strides()[0];
  p.w_cs = w.strides()[1];
  p.s_rs = scales.strides()[0];
  p.s_cs = scales.strides()[1];
  p.b_rs = biases.strides()[0];
  p.b_cs = biases.strides()[1];

  encoder.set_input_array(x);
  encoder.set_input_array(w);
  encoder.set_input_array(scales);
  encoder.set_input_array(biases);
  encoder.set_output_array(out);
  cuda::dispatch_float(out.dtype(), "quantized_matmul", [&](auto type, const char* dtype) {
    using T = typename decltype(type)::type;
    if (bits_ == 4) {
      launch_qmm<T, 4>(encoder, p, transpose_, dtype);
    } else {
      launch_qmm<T, 8>(encoder, p, transpose_, dtype);
    }
  });
}

} // namespace mlxr

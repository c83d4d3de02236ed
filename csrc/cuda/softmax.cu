// Softmax::eval_gpu on MLX's CUDA backend; device code in kernels/softmax.cuh.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda/layout.h"
#include "cuda/row_configs.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "softmax.h"

#include "../../kernels/softmax.cuh"

namespace mlxr {

namespace {

using cuda::SoftmaxParams;

template <typename T, int kV>
struct SoftmaxKernel {
  template <int kGroup, int kItems>
  struct Of {
    static const void* get() {
      return reinterpret_cast<const void*>(&cuda::softmax_rows<T, kGroup, kItems, kV>);
    }
  };
};

// Rows adjacent in memory, their elements strided (a non-last axis, as a transposed view):
// softmax_cols, each lane loading kRpl rows at once (8 bytes, 4, or one element) where every
// tile's rows are so aligned. Fewer tiles than SMs split each row's elements over a cluster of
// 2 or 4 blocks (a square matrix's axis 0 has 4096 rows: 64 tiles of 8-byte loads), as long
// as every block keeps 4 pass-2 tiles of elements. False if the layout is not that. The
// output never aliases x: donation needs a row-contiguous x, which this is not.
template <typename T, int kRpl>
const void* softmax_cols_kernel(int split) {
  return split == 4 ? reinterpret_cast<const void*>(&cuda::softmax_cols<T, kRpl, 4>)
      : split == 2  ? reinterpret_cast<const void*>(&cuda::softmax_cols<T, kRpl, 2>)
                    : reinterpret_cast<const void*>(&cuda::softmax_cols<T, kRpl, 1>);
}

template <typename T>
bool launch_softmax_cols(mx::cu::CommandEncoder& encoder, SoftmaxParams& p, const char* dtype) {
  const int last = p.rows.ndim - 1;
  if (p.elems.ndim != 1 || p.elems.strides[0] == 1 || p.row_size == 1 || p.rows.strides[last] != 1) {
    return false;
  }
  const int64_t inner = p.rows.shape[last];
  auto rows_aligned = [&](int rpl) {
    bool ok = inner % rpl == 0 && p.elems.strides[0] % rpl == 0 &&
        reinterpret_cast<uintptr_t>(p.x) % (rpl * sizeof(T)) == 0;
    for (int k = 0; k < last; ++k) {
      ok = ok && p.rows.strides[k] % rpl == 0;
    }
    return ok;
  };
  constexpr int kWide = 8 / sizeof(T);
  const int rpl = rows_aligned(kWide) ? kWide : (kWide > 2 && rows_aligned(2) ? 2 : 1);
  const int64_t tiles = (inner + 32 * rpl - 1) / (32 * rpl) * (p.n_rows / inner);
  int split = 1;
  while (split < 4 && tiles * split < cuda::sm_count(encoder) &&
         p.row_size >= 2 * split * 4 * cuda::kSoftmaxColsTile) {
    split *= 2;
  }
  // EXPERIMENT (remove before merging): MLXR_SOFTMAX_COLS_SPLIT=1|2|4 forces the cluster size.
  static const int forced = [] {
    const char* e = std::getenv("MLXR_SOFTMAX_COLS_SPLIT");
    return e ? std::atoi(e) : 0;
  }();
  if (forced == 1 || forced == 2 || forced == 4) {
    split = forced;
  }
  const void* kernel = rpl == kWide ? softmax_cols_kernel<T, kWide>(split)
      : rpl == 2                    ? softmax_cols_kernel<T, 2>(split)
                                    : softmax_cols_kernel<T, 1>(split);
  const unsigned blocks = cuda::grid_size(std::min<int64_t>(tiles, int64_t(1) << 28)) * split;
  cuda::launch(encoder, kernel, dim3(blocks), dim3(32 * cuda::kSoftmaxColsWarps), p, 0, dim3(split, 1, 1));
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive; the variant
  // names the rows a lane loads and the blocks a tile takes.
  record_kernel("gpu", "softmax_cols" + std::to_string(rpl) + (split > 1 ? "x" + std::to_string(split) : "") + "_" + dtype);
  return true;
}

template <typename T>
void launch_softmax(mx::cu::CommandEncoder& encoder, SoftmaxParams& p, const char* dtype) {
  if (launch_softmax_cols<T>(encoder, p, dtype)) {
    return;
  }
  constexpr int V = 16 / sizeof(T);
  bool vector = p.elems.ndim == 1 && (p.elems.strides[0] == 1 || p.row_size == 1) && p.row_size % V == 0 &&
      reinterpret_cast<uintptr_t>(p.x) % 16 == 0;
  for (int k = 0; k < p.rows.ndim; ++k) {
    vector = vector && p.rows.strides[k] % V == 0;
  }
  // 16-bit short rows take two units a thread: one (16 threads a 128-element row) ran bf16 at
  // 95 % of copy, two at 99 % (H100, 1048576 x 128); float32 stays at one (99.7 vs 99 %).
  constexpr int kShortItems = sizeof(T) == 2 ? 2 : 1;
  cuda::RowConfig c = vector ? cuda::pick_row_config<SoftmaxKernel<T, V>::template Of, kShortItems>(p.row_size / V)
                             : cuda::pick_row_config<SoftmaxKernel<T, 1>::template Of>(p.row_size);
  cuda::launch(encoder, c.kernel, dim3(c.grid(p.n_rows)), dim3(c.block()), p);
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", "softmax_" + c.variant(vector) + dtype);
}

} // namespace

// Buffers, in the order the encoder sees them: x (input), out. The kernel takes one
// SoftmaxParams by value (kernels/softmax.cuh).
void Softmax::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  int ndim = static_cast<int>(x.ndim());
  int64_t row_size = 1;
  for (int k = ndim - n_axes_; k < ndim; ++k) {
    row_size *= x.shape(k);
  }
  cuda::check_row_length(row_size, "softmax");
  // A donated row-contiguous x is overwritten in place: each thread reads its elements
  // before the row's reductions complete and writes only those elements afterwards.
  cuda::output_in_place_or_new(out, x, encoder);

  SoftmaxParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.out = mx::gpu_ptr<void>(out);
  p.row_size = static_cast<int>(row_size);
  p.n_rows = static_cast<int64_t>(x.size()) / row_size;
  p.rows = cuda::collapse_axes({&x}, 0, ndim - n_axes_, "softmax")[0];
  p.elems = cuda::collapse_axes({&x}, ndim - n_axes_, ndim, "softmax")[0];

  encoder.set_input_array(x);
  encoder.set_output_array(out);
  cuda::dispatch_float(out.dtype(), "softmax", [&](auto type, const char* dtype) {
    launch_softmax<typename decltype(type)::type>(encoder, p, dtype);
  });
}

} // namespace mlxr

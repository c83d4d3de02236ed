// Softmax::eval_gpu on MLX's CUDA backend; device code in kernels/softmax.cuh.
#include <algorithm>
#include <cstdint>
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
// tile's rows are so aligned, when there are at least as many tiles (blocks) as SMs: fewer
// leave SMs idle, and a single call ran at half the row kernel's speed (csrc/cuda/NOTES.md,
// seventh session, with what was tried for few tiles). False if the layout is not that. The
// output never aliases x: donation needs a row-contiguous x, which this is not.
template <typename T>
bool launch_softmax_cols(mx::cu::CommandEncoder& encoder, SoftmaxParams& p, const char* dtype) {
  const int last = p.rows.ndim - 1;
  if (p.elems.ndim != 1 || p.elems.strides[0] == 1 || p.row_size == 1 || p.rows.strides[last] != 1) {
    return false;
  }
  const cuda::ColumnRows cols{p.x, int(sizeof(T)), p.rows.shape[last], p.elems.strides[0], p.rows.strides, last};
  constexpr int kWide = 8 / sizeof(T);
  const int rpl = cols.rows_per_lane();
  const int64_t tiles = cols.tiles(rpl, p.n_rows);
  if (tiles < cuda::sm_count(encoder)) {
    return false;
  }
  const void* kernel = rpl == kWide ? reinterpret_cast<const void*>(&cuda::softmax_cols<T, kWide>)
      : rpl == 2                    ? reinterpret_cast<const void*>(&cuda::softmax_cols<T, 2>)
                                    : reinterpret_cast<const void*>(&cuda::softmax_cols<T, 1>);
  cuda::launch(encoder, kernel, dim3(cuda::grid_size(tiles)), dim3(32 * cuda::kSoftmaxColsWarps), p);
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive; the variant
  // names the rows a lane loads.
  record_kernel("gpu", {"softmax_cols", rpl == 1 ? "1" : rpl == 2 ? "2" : "4", "_", dtype});
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
  record_kernel("gpu", {"softmax_", c.variant(vector), dtype});
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

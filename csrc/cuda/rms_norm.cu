// RMSNorm::eval_gpu on MLX's CUDA backend; device code in kernels/rms_norm.cuh.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda/layout.h"
#include "cuda/runtime.h"
#include "kernel_log.h"
#include "rms_norm.h"

#include "../../kernels/rms_norm.cuh"

namespace mlxr {

static_assert(cuda::kMaxRowDims == kGpuMaxRowDims, "builder and kernels disagree on row axes");

namespace {

using cuda::RMSNormParams;

// One row-kernel configuration: kGroup threads per row, kChunks 16-byte vectors per thread
// kept in registers (0: two passes over memory).
struct RowsConfig {
  const void* kernel;
  int block, group, chunks;
};

template <typename T, int kBlock, int kGroup, int kChunks>
RowsConfig rows_config() {
  return {reinterpret_cast<const void*>(&cuda::rms_norm_rows<T, kBlock, kGroup, kChunks>),
          kBlock, kGroup, kChunks};
}

// Smallest configuration whose registers hold the row with up to 4 vectors (64 bytes in
// flight) per thread: a warp per row up to 128 vectors (512 f32 / 1024 half), then a block per
// row; rows over 8 x 512 vectors (16384 f32 / 32768 half) loop. Capping registers for more
// resident blocks measured slower for f32 and mixed for bf16 (csrc/cuda/NOTES.md).
template <typename T>
RowsConfig pick_rows(int64_t n_vec) {
  const RowsConfig configs[] = {
      rows_config<T, 128, 32, 1>(),  rows_config<T, 128, 32, 2>(),   rows_config<T, 128, 32, 4>(),
      rows_config<T, 64, 64, 4>(),   rows_config<T, 128, 128, 4>(),  rows_config<T, 256, 256, 4>(),
      rows_config<T, 512, 512, 4>(), rows_config<T, 512, 512, 8>(),
  };
  for (const RowsConfig& c : configs) {
    if (n_vec <= int64_t(c.group) * c.chunks) {
      return c;
    }
  }
  return rows_config<T, 1024, 1024, 0>();
}

template <typename T>
void launch_rms_norm(mx::cu::CommandEncoder& encoder, RMSNormParams& p, const char* dtype) {
  const char* variant;
  if (p.x_step == 1 || p.row_size == 1) {
    p.x_step = 1;
    constexpr int V = 16 / sizeof(T);
    RowsConfig c = pick_rows<T>(p.row_size / V);
    int rows_per_block = c.block / c.group;
    int64_t blocks = (p.n_rows + rows_per_block - 1) / rows_per_block;
    cuda::launch(encoder, c.kernel, dim3(cuda::grid_size(blocks)), dim3(c.block), p);
    variant = c.group == 32 ? "warp_" : "rows_";
  } else if (p.row_strides[p.row_ndim - 1] == 1) {
    // Transposed: neighbouring rows are neighbours in memory. Each lane loads kRpl rows at
    // once (8 bytes, else 4, else one element) where every tile's rows are so aligned.
    const cuda::ColumnRows cols{p.x, int(sizeof(T)), p.row_shape[p.row_ndim - 1], p.x_step, p.row_strides, p.row_ndim - 1};
    constexpr int kWide = 8 / sizeof(T);
    // Short rows: 32 bytes of rows at a time held in shared memory, x read once.
    constexpr int kSmemRows = 32 / sizeof(T);
    if (cols.aligned(kWide) && cols.inner % kSmemRows == 0 && p.row_size * sizeof(T) % 16 == 0) {
      const void* kernel = reinterpret_cast<const void*>(&cuda::rms_norm_cols_smem<T>);
      int64_t smem = int64_t(kSmemRows) * (p.row_size + 16 / sizeof(T)) * sizeof(T);
      if (smem <= cuda::max_dynamic_smem(encoder, kernel, 4096)) {
        cuda::launch(encoder, kernel, dim3(cuda::grid_size(p.n_rows / kSmemRows)), dim3(1024), p,
                     static_cast<uint32_t>(smem));
        record_kernel("gpu", {"rms_norm_cols_smem_", dtype});
        return;
      }
    }
    const int rpl = cols.rows_per_lane();
    const void* kernel = rpl == kWide ? reinterpret_cast<const void*>(&cuda::rms_norm_cols<T, kWide>)
        : rpl == 2 ? reinterpret_cast<const void*>(&cuda::rms_norm_cols<T, 2>)
                   : reinterpret_cast<const void*>(&cuda::rms_norm_cols<T, 1>);
    const int64_t tiles = cols.tiles(rpl, p.n_rows);
    cuda::launch(encoder, kernel, dim3(cuda::grid_size(tiles)), dim3(32 * cuda::kColsWarps), p);
    variant = "cols_";
  } else {
    constexpr int kBlock = 256;
    cuda::launch(encoder, reinterpret_cast<const void*>(&cuda::rms_norm_strided<T, kBlock>),
                 dim3(cuda::grid_size(p.n_rows)), dim3(kBlock), p);
    variant = "strided_";
  }
  // Recorded when the kernel is encoded, i.e. when MLX evaluates this primitive.
  record_kernel("gpu", {"rms_norm_", variant, dtype});
}

} // namespace

// Buffers, in the order the encoder sees them: x (input), weight (input, optional), out.
// The kernels take one RMSNormParams by value (kernels/rms_norm.cuh).
void RMSNorm::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  if (cuda::no_work(outputs)) {
    return;
  }
  auto& encoder = mx::cu::get_command_encoder(stream());
  cuda::check_row_length(x.shape(-1), "rms_norm");
  // A donated row-contiguous x is overwritten in place: every element is read by the thread
  // that writes it, before it writes it.
  cuda::output_in_place_or_new(out, x, encoder);

  RMSNormParams p = {};
  p.x = mx::gpu_ptr<void>(x);
  p.out = mx::gpu_ptr<void>(out);
  p.row_size = static_cast<int>(x.shape(-1));
  p.n_rows = static_cast<int64_t>(x.size()) / p.row_size;
  p.x_step = x.strides().back();
  p.eps = static_cast<float>(eps_);
  cuda::collapse_rows(x, p.row_ndim, p.row_shape, p.row_strides, "rms_norm");

  encoder.set_input_array(x);
  if (has_weight_) {
    const mx::array& w = inputs[1];
    p.weight = mx::gpu_ptr<void>(w);
    p.w_step = w.strides()[0];
    encoder.set_input_array(w);
  }
  encoder.set_output_array(out);

  cuda::dispatch_float(out.dtype(), "rms_norm", [&](auto type, const char* dtype) {
    launch_rms_norm<typename decltype(type)::type>(encoder, p, dtype);
  });
}

} // namespace mlxr

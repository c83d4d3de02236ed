#include "rms_norm.h"

#include <cmath>
#include <vector>

#include "cpu/block.h"
#include "cpu/buffers.h"
#include "cpu/dtype_dispatch.h"
#include "cpu/isa.h"
#include "cpu/parallel_rows.h"
#include "cpu/rms_row.h"
#include "cpu/rows.h"
#include "kernel_log.h"
#ifdef MLXR_METAL
#include "metal/contiguous.h"
#endif
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"

namespace mlxr {

namespace {

struct RMSNormArgs {
  const void* x;
  int64_t row_begin; // the rows [row_begin, row_end) of this call
  int64_t row_end;
  int64_t row_size;
  const cpu::RowWalker* rows;
  const void* weight; // contiguous, output dtype, or null
  bool weight_finite;
  void* out;
  double eps;
};

template <typename D, typename Isa>
MLXR_INLINE void rms_norm_rows_impl(RMSNormArgs args) {
  using S = typename D::storage;
  const S* x = static_cast<const S*>(args.x);
  const S* weight = static_cast<const S*>(args.weight);
  S* out = static_cast<S*>(args.out);
  int64_t n = args.row_size;
  std::vector<S> gathered;
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    // Strided rows are gathered once so both passes run on contiguous data.
    const S* row = cpu::row_of(x, *args.rows, r, n, gathered);
    cpu::normalise_rms_row<D, Isa>(row, weight, args.weight_finite, out + r * n, n,
                                   cpu::sum_squares<D, Isa>(row, n), args.eps);
  }
}

MLXR_ISA_DISPATCH(rms_norm_rows, rms_norm_rows_impl)

constexpr int64_t kCheckWeightRows = 16;

template <typename D>
void run_rms_norm(const mx::array& x, const std::optional<mx::array>& w, mx::array& out,
                  double eps, const std::string& kernel) {
  using S = typename D::storage;
  cpu::RowWalker rows(x);
  int64_t row_size = x.ndim() ? x.shape(-1) : 1;
  int64_t n_rows = row_size ? static_cast<int64_t>(x.size()) / row_size : 0;
  // Weight in storage precision: half the cache footprint of a float copy for half types.
  std::vector<S> scratch;
  const S* weight = w ? cpu::contiguous_row<S>(*w, scratch) : nullptr;
  // Checked once for many rows; a few rows take the NaN-safe rounding instead.
  bool weight_finite = weight && n_rows >= kCheckWeightRows && cpu::all_finite<D>(weight, row_size);
  cpu::parallel_rows(n_rows, 2 * row_size * sizeof(S), [&](int64_t begin, int64_t end) {
    rms_norm_rows<D>(RMSNormArgs{x.data<void>(), begin, end, row_size, &rows, weight,
                                 weight_finite, out.data<void>(), eps});
  });
  record_kernel("cpu", {kernel});
}

} // namespace

void RMSNorm::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  std::optional<mx::array> w;
  if (has_weight_) {
    w = inputs[1];
  }
  // A donated row-contiguous x is overwritten in place: it saves an allocation the size of
  // the input.
  cpu::reuse_or_allocate(x, out);

  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(x);
  if (w) {
    encoder.set_input_array(*w);
  }
  encoder.set_output_array(out);
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x),
                    w = w ? std::optional(mx::array::unsafe_weak_copy(*w)) : std::nullopt,
                    out = mx::array::unsafe_weak_copy(out), eps = eps_]() mutable {
    cpu::dispatch_float(out.dtype(), "rms_norm", [&](auto d, const std::string& kernel) {
      run_rms_norm<decltype(d)>(x, w, out, eps, kernel);
    });
  });
}

std::pair<std::vector<mx::array>, std::vector<int>> RMSNorm::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  bool weight_batched = has_weight_ && axes[1] >= 0;
  if (weight_batched) {
    return FusedPrimitive::vmap(inputs, axes);
  }
  // Moving the batch axis to the front keeps the normalised axis last.
  mx::array x = mx::moveaxis(inputs[0], axes[0], 0, stream());
  std::optional<mx::array> w;
  if (has_weight_) {
    w = inputs[1];
  }
  return {{rms_norm(x, w, eps_, fallback(), stream())}, {0}};
}

bool RMSNorm::is_equivalent(const mx::Primitive& other) const {
  auto* o = dynamic_cast<const RMSNorm*>(&other);
  return o && eps_ == o->eps_ && has_weight_ == o->has_weight_;
}

mx::array rms_norm(
    const mx::array& x,
    const std::optional<mx::array>& weight,
    double eps,
    Fallback fallback,
    mx::Stream stream) {
#ifdef MLXR_GPU
  if (stream.device.type == mx::Device::gpu && x.ndim() > kGpuMaxRowDims + 1) {
    mx::array rows = mx::reshape(x, {-1, x.shape(-1)}, stream);
    return mx::reshape(rms_norm(rows, weight, eps, std::move(fallback), stream), x.shape(), stream);
  }
#endif
  std::vector<mx::array> inputs{x};
#ifdef MLXR_METAL
  inputs[0] = metal::contiguous_rows(x, stream);
#endif
  if (weight) {
    inputs.push_back(*weight);
  }
  return mx::array(
      x.shape(),
      x.dtype(),
      std::make_shared<RMSNorm>(stream, std::move(fallback), eps, weight.has_value()),
      std::move(inputs));
}

} // namespace mlxr

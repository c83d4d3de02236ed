#include "add_rms_norm.h"

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

struct AddRMSNormArgs {
  const void* x;
  const void* residual;
  int64_t row_begin; // the rows [row_begin, row_end) of this call
  int64_t row_end;
  int64_t row_size;
  const cpu::RowWalker* x_rows;
  const cpu::RowWalker* residual_rows;
  const void* weight; // contiguous, output dtype, or null
  bool weight_finite;
  void* normed;
  void* h;
  double eps;
};

// h = round(x + residual) for one row, returning the sum of squares of the rounded h in
// kBlock lanes (the order of cpu::sum_squares, so normed == rms_norm(h) bitwise).
template <typename D, typename Isa>
MLXR_INLINE typename D::acc add_row(
    const typename D::storage* x,
    const typename D::storage* residual,
    typename D::storage* h,
    int64_t n) {
  using Acc = typename D::acc;
  using B = cpu::Block<D, Isa>;
  cpu::LaneSums<Acc, Isa> partial;
  int64_t i = 0;
  for (; i + cpu::kBlock <= n; i += cpu::kBlock) {
    auto sum = B::load(x + i) + B::load(residual + i);
    B::store(sum, h + i);
    auto rounded = B::round(sum);
    partial.add_product(rounded, rounded);
  }
  Acc total = partial.sum();
  for (; i < n; ++i) {
    h[i] = D::store(D::load(x[i]) + D::load(residual[i]));
    Acc t = D::load(h[i]);
    total += t * t;
  }
  return total;
}

template <typename D, typename Isa>
MLXR_INLINE void add_rms_norm_rows_impl(AddRMSNormArgs args) {
  using S = typename D::storage;
  const S* x = static_cast<const S*>(args.x);
  const S* residual = static_cast<const S*>(args.residual);
  const S* weight = static_cast<const S*>(args.weight);
  S* normed = static_cast<S*>(args.normed);
  S* h = static_cast<S*>(args.h);
  int64_t n = args.row_size;
  std::vector<S> x_gathered, residual_gathered;
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const S* x_row = cpu::row_of(x, *args.x_rows, r, n, x_gathered);
    const S* residual_row = cpu::row_of(residual, *args.residual_rows, r, n, residual_gathered);
    S* h_row = h + r * n;
    // h comes back from cache for the second pass.
    cpu::normalise_rms_row<D, Isa>(h_row, weight, args.weight_finite, normed + r * n, n,
                                   add_row<D, Isa>(x_row, residual_row, h_row, n), args.eps);
  }
}

MLXR_ISA_DISPATCH(add_rms_norm_rows, add_rms_norm_rows_impl)

constexpr int64_t kCheckWeightRows = 16;

template <typename D>
void run_add_rms_norm(
    const mx::array& x,
    const mx::array& residual,
    const std::optional<mx::array>& w,
    mx::array& normed,
    mx::array& h,
    double eps,
    const std::string& kernel) {
  using S = typename D::storage;
  cpu::RowWalker x_rows(x), residual_rows(residual);
  int64_t row_size = x.ndim() ? x.shape(-1) : 1;
  int64_t n_rows = row_size ? static_cast<int64_t>(x.size()) / row_size : 0;
  std::vector<S> scratch;
  const S* weight = w ? cpu::contiguous_row<S>(*w, scratch) : nullptr;
  // Checked once for many rows; a few rows take the NaN-safe rounding instead.
  bool weight_finite = weight && n_rows >= kCheckWeightRows && cpu::all_finite<D>(weight, row_size);
  cpu::parallel_rows(n_rows, 4 * row_size * sizeof(S), [&](int64_t begin, int64_t end) {
    add_rms_norm_rows<D>(AddRMSNormArgs{x.data<void>(), residual.data<void>(), begin, end, row_size,
                                        &x_rows, &residual_rows, weight, weight_finite, normed.data<void>(),
                                        h.data<void>(), eps});
  });
  record_kernel("cpu", {kernel});
}

} // namespace

void AddRMSNorm::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  const mx::array& residual = inputs[1];
  mx::array& normed = outputs[0];
  mx::array& h = outputs[1];
  std::optional<mx::array> w;
  if (has_weight_) {
    w = inputs[2];
  }
  // The usual decoder loop donates the old residual stream to the new one.
  cpu::reuse_or_allocate(x, normed);
  cpu::reuse_or_allocate(residual, h);

  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (auto& in : inputs) {
    encoder.set_input_array(in);
  }
  encoder.set_output_array(normed);
  encoder.set_output_array(h);
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x),
                    residual = mx::array::unsafe_weak_copy(residual),
                    w = w ? std::optional(mx::array::unsafe_weak_copy(*w)) : std::nullopt,
                    normed = mx::array::unsafe_weak_copy(normed),
                    h = mx::array::unsafe_weak_copy(h), eps = eps_]() mutable {
    cpu::dispatch_float(normed.dtype(), "add_rms_norm", [&](auto d, const std::string& kernel) {
      run_add_rms_norm<decltype(d)>(x, residual, w, normed, h, eps, kernel);
    });
  });
}

std::pair<std::vector<mx::array>, std::vector<int>> AddRMSNorm::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  if (has_weight_ && axes[2] >= 0) {
    return FusedPrimitive::vmap(inputs, axes);
  }
  // Batch axis to the front (the normalised axis stays last); an unbatched x or residual
  // is broadcast along it.
  int batch = axes[0] >= 0 ? inputs[0].shape(axes[0]) : inputs[1].shape(axes[1]);
  auto batched = [&](int i) {
    if (axes[i] >= 0) {
      return mx::moveaxis(inputs[i], axes[i], 0, stream());
    }
    mx::Shape shape = inputs[i].shape();
    shape.insert(shape.begin(), batch);
    return mx::broadcast_to(mx::expand_dims(inputs[i], 0, stream()), shape, stream());
  };
  std::optional<mx::array> w;
  if (has_weight_) {
    w = inputs[2];
  }
  auto outputs = add_rms_norm(batched(0), batched(1), w, eps_, fallback(), stream());
  return {outputs, {0, 0}};
}

bool AddRMSNorm::is_equivalent(const mx::Primitive& other) const {
  auto* o = dynamic_cast<const AddRMSNorm*>(&other);
  return o && eps_ == o->eps_ && has_weight_ == o->has_weight_;
}

std::vector<mx::array> add_rms_norm(
    const mx::array& x,
    const mx::array& residual,
    const std::optional<mx::array>& weight,
    double eps,
    Fallback fallback,
    mx::Stream stream) {
  std::vector<mx::array> inputs{x, residual};
#ifdef MLXR_METAL
  inputs[0] = metal::contiguous_rows(x, stream);
  inputs[1] = metal::contiguous_rows(residual, stream);
#endif
  if (weight) {
    inputs.push_back(*weight);
  }
  return mx::array::make_arrays(
      {x.shape(), x.shape()},
      {x.dtype(), x.dtype()},
      std::make_shared<AddRMSNorm>(stream, std::move(fallback), eps, weight.has_value()),
      std::move(inputs));
}

} // namespace mlxr

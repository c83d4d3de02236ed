#include "layer_norm.h"

#include <cmath>
#include <vector>

#include "cpu/block.h"
#include "cpu/buffers.h"
#include "cpu/dtype_dispatch.h"
#include "cpu/isa.h"
#include "cpu/parallel_rows.h"
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

struct LayerNormArgs {
  const void* x;
  int64_t row_begin; // the rows [row_begin, row_end) of this call
  int64_t row_end;
  int64_t row_size;
  const cpu::RowWalker* rows;
  const void* weight; // contiguous, output dtype, or null
  const void* bias; // contiguous, output dtype, or null
  bool params_finite; // weight and bias (those present) checked finite
  void* out;
  double eps;
};

// The reference rounds y * weight before adding the bias; an FMA would not. Contraction is
// off for this kernel only (the sums below are then plain multiply-adds as in the reference).
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// Row sums in 2 x kBlock lanes: even blocks in one LaneSums, odd blocks in the other, then
// the lanes of the first and of the second in order. Two add chains hide the add latency
// (one chain made these passes latency-bound), and the order still depends on neither
// alignment nor ISA, so results are reproducible.
template <typename Acc, typename Isa>
struct PairedSums {
  cpu::LaneSums<Acc, Isa> even, odd;
  MLXR_INLINE Acc sum() const {
    return even.sum() + odd.sum();
  }
};

template <typename D, typename Isa>
MLXR_INLINE typename D::acc row_sum(const typename D::storage* x, int64_t n) {
  using Acc = typename D::acc;
  using B = cpu::Block<D, Isa>;
  PairedSums<Acc, Isa> partial;
  int64_t i = 0;
  for (; i + 2 * cpu::kBlock <= n; i += 2 * cpu::kBlock) {
    partial.even.add(B::load(x + i));
    partial.odd.add(B::load(x + i + cpu::kBlock));
  }
  if (i + cpu::kBlock <= n) {
    partial.even.add(B::load(x + i));
    i += cpu::kBlock;
  }
  Acc total = partial.sum();
  for (; i < n; ++i) {
    total += D::load(x[i]);
  }
  return total;
}

// Sum of (x - mean)^2 (paired lanes as row_sum): the two-pass variance of the reference,
// never E[x^2] - mean^2.
template <typename D, typename Isa>
MLXR_INLINE typename D::acc centred_sum_squares(
    const typename D::storage* x,
    int64_t n,
    typename D::acc mean) {
  using Acc = typename D::acc;
  using B = cpu::Block<D, Isa>;
  PairedSums<Acc, Isa> partial;
  // Broadcast once: GCC rebuilds a wide broadcast through the stack every iteration on AVX2.
  const auto mean_v = cpu::broadcast<typename B::V>(mean);
  int64_t i = 0;
  for (; i + 2 * cpu::kBlock <= n; i += 2 * cpu::kBlock) {
    auto even = B::load(x + i) - mean_v;
    auto odd = B::load(x + i + cpu::kBlock) - mean_v;
    partial.even.add_product(even, even);
    partial.odd.add_product(odd, odd);
  }
  if (i + cpu::kBlock <= n) {
    auto centred = B::load(x + i) - mean_v;
    partial.even.add_product(centred, centred);
    i += cpu::kBlock;
  }
  Acc total = partial.sum();
  for (; i < n; ++i) {
    Acc centred = D::load(x[i]) - mean;
    total += centred * centred;
  }
  return total;
}

// out = round(round(round((x - mean) * inv_std) * weight) + bias), each step present only
// with its parameter. kNoNan: mean, inv_std and the parameters are finite, so no value here
// is NaN (|(x - mean) * inv_std| <= sqrt(n)) and the rounding skips its NaN fix-up.
template <typename D, typename Isa, bool kWeight, bool kBias, bool kNoNan>
MLXR_INLINE void normalise_row(
    const typename D::storage* x,
    const typename D::storage* weight,
    const typename D::storage* bias,
    typename D::storage* out,
    int64_t n,
    typename D::acc mean,
    typename D::acc inv_std) {
  using Acc = typename D::acc;
  using B = cpu::Block<D, Isa>;
  const auto mean_v = cpu::broadcast<typename B::V>(mean);
  const auto inv_std_v = cpu::broadcast<typename B::V>(inv_std);
  int64_t i = 0;
  for (; i + cpu::kBlock <= n; i += cpu::kBlock) {
    auto y = (B::load(x + i) - mean_v) * inv_std_v;
    if constexpr (kWeight) {
      y = (kNoNan ? cpu::round_not_nan<D, Isa>(y) : B::round(y)) * B::load(weight + i);
    }
    if constexpr (kBias) {
      y = (kNoNan ? cpu::round_not_nan<D, Isa>(y) : B::round(y)) + B::load(bias + i);
    }
    if constexpr (kNoNan) {
      cpu::store_not_nan<D, Isa>(y, out + i);
    } else {
      B::store(y, out + i);
    }
  }
  for (; i < n; ++i) {
    Acc y = (D::load(x[i]) - mean) * inv_std;
    if constexpr (kWeight) {
      y = D::load(D::store(y)) * D::load(weight[i]);
    }
    if constexpr (kBias) {
      y = D::load(D::store(y)) + D::load(bias[i]);
    }
    out[i] = D::store(y);
  }
}

template <typename D, typename Isa>
MLXR_INLINE void layer_norm_rows_impl(LayerNormArgs args) {
  using S = typename D::storage;
  using Acc = typename D::acc;
  const S* x = static_cast<const S*>(args.x);
  const S* weight = static_cast<const S*>(args.weight);
  const S* bias = static_cast<const S*>(args.bias);
  S* out = static_cast<S*>(args.out);
  int64_t n = args.row_size;
  std::vector<S> gathered;
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    // Strided rows are gathered once so all three passes run on contiguous data.
    const S* row = cpu::row_of(x, *args.rows, r, n, gathered);
    // The row is read from memory once; the second and third passes hit the cache.
    Acc mean = row_sum<D, Isa>(row, n) / static_cast<Acc>(n);
    Acc var = centred_sum_squares<D, Isa>(row, n, mean) / static_cast<Acc>(n);
    Acc inv_std = Acc(1) / std::sqrt(var + static_cast<Acc>(args.eps));
    S* out_row = out + r * n;
    // A finite sum and variance mean every x is finite.
    bool no_nan = args.params_finite && std::isfinite(mean) && std::isfinite(var) &&
        std::isfinite(inv_std);
    cpu::with_flags([&](auto has_weight, auto has_bias, auto finite) {
      normalise_row<D, Isa, decltype(has_weight)::value, decltype(has_bias)::value,
                    decltype(finite)::value>(row, weight, bias, out_row, n, mean, inv_std);
    }, weight != nullptr, bias != nullptr, no_nan);
  }
}

MLXR_ISA_DISPATCH(layer_norm_rows, layer_norm_rows_impl)

#pragma GCC pop_options

constexpr int64_t kCheckParamRows = 16;

template <typename D>
void run_layer_norm(
    const mx::array& x,
    const std::optional<mx::array>& w,
    const std::optional<mx::array>& b,
    mx::array& out,
    double eps,
    const std::string& kernel) {
  using S = typename D::storage;
  cpu::RowWalker rows(x);
  int64_t row_size = x.ndim() ? x.shape(-1) : 1;
  int64_t n_rows = row_size ? static_cast<int64_t>(x.size()) / row_size : 0;
  std::vector<S> weight_scratch, bias_scratch;
  const S* weight = w ? cpu::contiguous_row<S>(*w, weight_scratch) : nullptr;
  const S* bias = b ? cpu::contiguous_row<S>(*b, bias_scratch) : nullptr;
  // Checked once for many rows; a few rows take the NaN-safe rounding instead.
  bool params_finite = n_rows >= kCheckParamRows && (!weight || cpu::all_finite<D>(weight, row_size)) &&
      (!bias || cpu::all_finite<D>(bias, row_size));
  cpu::parallel_rows(n_rows, 2 * row_size * sizeof(S), [&](int64_t begin, int64_t end) {
    layer_norm_rows<D>(
        LayerNormArgs{x.data<void>(), begin, end, row_size, &rows, weight, bias, params_finite,
                      out.data<void>(), eps});
  });
  record_kernel("cpu", {kernel});
}

} // namespace

void LayerNorm::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  std::optional<mx::array> w, b;
  if (has_weight_) {
    w = inputs[1];
  }
  if (has_bias_) {
    b = inputs[has_weight_ ? 2 : 1];
  }
  cpu::reuse_or_allocate(x, out); // a donated row-contiguous x is overwritten in place

  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (auto& in : inputs) {
    encoder.set_input_array(in);
  }
  encoder.set_output_array(out);
  auto weak = [](const std::optional<mx::array>& a) {
    return a ? std::optional(mx::array::unsafe_weak_copy(*a)) : std::nullopt;
  };
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x), w = weak(w), b = weak(b),
                    out = mx::array::unsafe_weak_copy(out), eps = eps_]() mutable {
    cpu::dispatch_float(out.dtype(), "layer_norm", [&](auto d, const std::string& kernel) {
      run_layer_norm<decltype(d)>(x, w, b, out, eps, kernel);
    });
  });
}

std::pair<std::vector<mx::array>, std::vector<int>> LayerNorm::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  for (size_t i = 1; i < axes.size(); ++i) {
    if (axes[i] >= 0) {
      return FusedPrimitive::vmap(inputs, axes);
    }
  }
  // Moving the batch axis to the front keeps the normalised axis last.
  mx::array x = mx::moveaxis(inputs[0], axes[0], 0, stream());
  std::optional<mx::array> w, b;
  if (has_weight_) {
    w = inputs[1];
  }
  if (has_bias_) {
    b = inputs[has_weight_ ? 2 : 1];
  }
  return {{layer_norm(x, w, b, eps_, fallback(), stream())}, {0}};
}

bool LayerNorm::is_equivalent(const mx::Primitive& other) const {
  auto* o = dynamic_cast<const LayerNorm*>(&other);
  return o && eps_ == o->eps_ && has_weight_ == o->has_weight_ && has_bias_ == o->has_bias_;
}

mx::array layer_norm(
    const mx::array& x,
    const std::optional<mx::array>& weight,
    const std::optional<mx::array>& bias,
    double eps,
    Fallback fallback,
    mx::Stream stream) {
  std::vector<mx::array> inputs{x};
#ifdef MLXR_METAL
  inputs[0] = metal::contiguous_rows(x, stream);
#endif
#ifdef MLXR_CUDA
  // Rows whose elements are not adjacent (a transposed x): MLX's copy to rows, then the row
  // kernel in place on the copy, beats strided element loads (H100, f32 32768 x 4096: 1302 us
  // strided, csrc/cuda/NOTES.md).
  if (stream.device == mx::Device::gpu && x.ndim() > 0 && x.shape(-1) > 1 && x.strides().back() != 1) {
    inputs[0] = mx::contiguous(x, false, stream);
  }
#endif
  if (weight) {
    inputs.push_back(*weight);
  }
  if (bias) {
    inputs.push_back(*bias);
  }
  return mx::array(
      x.shape(),
      x.dtype(),
      std::make_shared<LayerNorm>(
          stream, std::move(fallback), eps, weight.has_value(), bias.has_value()),
      std::move(inputs));
}

} // namespace mlxr

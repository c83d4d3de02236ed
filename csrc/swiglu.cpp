#include "swiglu.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include "cpu/block.h"
#include "cpu/buffers.h"
#include "cpu/dtype_dispatch.h"
#include "cpu/isa.h"
#include "cpu/parallel_rows.h"
#include "cpu/rows.h"
#include "cpu/vec_math.h"
#include "kernel_log.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"

namespace mlxr {

namespace {

struct SwiGLUArgs {
  const void* gate;
  const void* up;
  int64_t row_begin; // the rows [row_begin, row_end) of this call
  int64_t row_end;
  int64_t row_size;
  const cpu::RowWalker* gate_rows; // null for same-layout dense inputs: one flat span
  const cpu::RowWalker* up_rows;
  void* out;
  int64_t flat_tail; // flat span: elements after row_end's piece that this call also does
};

// Elements per piece of a flat span (a multiple of kBlock).
constexpr int64_t kFlatPiece = 1 << 14;

// gate * sigmoid(gate) * up, in this order (the reference's). sigmoid(g) = 1 / (1 + e) for
// g >= 0 and e / (1 + e) for g < 0, e = exp(-|g|) <= 1: exp never overflows and small
// sigmoids keep their relative accuracy. float16/bfloat16 outputs take the cheaper exp2.
template <typename D, typename Isa, typename V>
MLXR_INLINE V swiglu_block(V g, V u) {
  using Acc = std::remove_reference_t<decltype(g[0])>;
  V one = cpu::broadcast<V>(Acc(1));
  V neg_abs = cpu::negative_abs(g);
  V e;
  if constexpr (std::is_same_v<D, cpu::F16> || std::is_same_v<D, cpu::BF16>) {
    e = cpu::exp2_nonpositive(neg_abs * cpu::kLog2e);
  } else {
    e = cpu::exp_nonpositive(neg_abs);
  }
  return g * ((g < 0 ? e : one) / (one + e)) * u;
}

template <typename D, typename Isa>
MLXR_INLINE void swiglu_span(
    const typename D::storage* g, const typename D::storage* u, typename D::storage* out, int64_t n) {
  using B = cpu::IoBlock<D, Isa>;
  int64_t i = 0;
  for (; i + cpu::kBlock <= n; i += cpu::kBlock) {
    B::store(swiglu_block<D, Isa>(B::load(g + i), B::load(u + i)), out + i);
  }
  if (i < n) {
    auto gv = cpu::load_partial<D, Isa>(g + i, n - i, 0);
    auto uv = cpu::load_partial<D, Isa>(u + i, n - i, 0);
    cpu::store_partial<D, Isa>(swiglu_block<D, Isa>(gv, uv), out + i, n - i);
  }
}

template <typename D, typename Isa>
MLXR_INLINE void swiglu_rows_impl(SwiGLUArgs args) {
  using S = typename D::storage;
  const S* gate = static_cast<const S*>(args.gate);
  const S* up = static_cast<const S*>(args.up);
  S* out = static_cast<S*>(args.out);
  int64_t n = args.row_size;
  if (!args.gate_rows) {
    int64_t first = args.row_begin * n;
    int64_t count = (args.row_end - args.row_begin) * n + args.flat_tail;
    swiglu_span<D, Isa>(gate + first, up + first, out + first, count);
    return;
  }
  std::vector<S> gate_buffer, up_buffer;
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const S* g = cpu::row_of(gate, *args.gate_rows, r, n, gate_buffer);
    const S* u = cpu::row_of(up, *args.up_rows, r, n, up_buffer);
    swiglu_span<D, Isa>(g, u, out + r * n, n);
  }
}

MLXR_ISA_DISPATCH(swiglu_rows, swiglu_rows_impl)

// Dense inputs with one layout (row-contiguous, transposed, ...) are one flat span in memory
// order, and the output takes that layout.
bool same_dense_layout(const mx::array& gate, const mx::array& up) {
  return cpu::dense(gate) && cpu::dense(up) && gate.strides() == up.strides();
}

template <typename D>
void run_swiglu(const mx::array& gate, const mx::array& up, mx::array& out, const std::string& kernel) {
  cpu::RowWalker gate_rows(gate), up_rows(up);
  bool flat = same_dense_layout(gate, up);
  int64_t size = static_cast<int64_t>(gate.size());
  // A flat span is cut into whole-block pieces (the last one takes the tail), so the pieces
  // can be split over threads like rows.
  int64_t row_size = flat ? std::min<int64_t>(size, kFlatPiece) : gate.ndim() ? gate.shape(-1) : 1;
  int64_t n_rows = row_size ? size / row_size : 0;
  int64_t tail = flat && row_size ? size - n_rows * row_size : 0;
  cpu::parallel_rows(n_rows, 3 * row_size * static_cast<int64_t>(gate.itemsize()),
                     [&](int64_t begin, int64_t end) {
                       swiglu_rows<D>(SwiGLUArgs{gate.data<void>(), up.data<void>(), begin, end,
                                                 row_size, flat ? nullptr : &gate_rows, &up_rows,
                                                 out.data<void>(), end == n_rows ? tail : 0});
                     });
  record_kernel("cpu", {kernel});
}

// The two partial derivatives in the accumulation dtype: {dy/dgate, dy/dup}.
std::pair<mx::array, mx::array> swiglu_partials(const mx::array& gate, const mx::array& up,
                                                mx::Stream s) {
  mx::Dtype acc = accumulation_dtype(gate.dtype());
  mx::array g = mx::astype(gate, acc, s);
  mx::array u = mx::astype(up, acc, s);
  mx::array one = mx::array(1.0, acc);
  // MLX's CPU exp (hence sigmoid) is float32-accurate even for float64: float64 takes e^-g as
  // a power, as reference/_exp.py does.
  mx::array sig = acc == mx::float64
      ? mx::reciprocal(mx::add(one, mx::power(mx::array(M_E, acc), mx::negative(g, s), s), s), s)
      : mx::sigmoid(g, s);
  mx::array d_gate = mx::multiply(
      mx::multiply(u, sig, s), mx::add(one, mx::multiply(g, mx::subtract(one, sig, s), s), s), s);
  return {d_gate, mx::multiply(g, sig, s)};
}

} // namespace

void SwiGLU::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& gate = inputs[0];
  const mx::array& up = inputs[1];
  mx::array& out = outputs[0];
  // Same-layout dense inputs give the output their layout; elementwise, so a donated one is
  // overwritten in place. Otherwise the output is row-contiguous.
  if (same_dense_layout(gate, up)) {
    if (gate.is_donatable()) {
      out.copy_shared_buffer(gate);
    } else if (up.is_donatable()) {
      out.copy_shared_buffer(up);
    } else {
      out.set_data(mx::allocator::malloc(gate.data_size() * out.itemsize()), gate.data_size(),
                   gate.strides(), gate.flags());
    }
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }

  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(gate);
  encoder.set_input_array(up);
  encoder.set_output_array(out);
  encoder.dispatch([gate = mx::array::unsafe_weak_copy(gate),
                    up = mx::array::unsafe_weak_copy(up),
                    out = mx::array::unsafe_weak_copy(out)]() mutable {
    cpu::dispatch_float(out.dtype(), "swiglu", [&](auto d, const std::string& kernel) {
      run_swiglu<decltype(d)>(gate, up, out, kernel);
    });
  });
}

std::vector<mx::array> SwiGLU::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  auto [d_gate, d_up] = swiglu_partials(primals[0], primals[1], stream());
  mx::Dtype acc = d_gate.dtype();
  mx::array ct = mx::astype(cotangents[0], acc, stream());
  std::vector<mx::array> grads;
  for (int arg : argnums) {
    mx::array partial = arg == 0 ? d_gate : d_up;
    grads.push_back(mx::astype(mx::multiply(ct, partial, stream()), primals[arg].dtype(), stream()));
  }
  return grads;
}

std::vector<mx::array> SwiGLU::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  auto [d_gate, d_up] = swiglu_partials(primals[0], primals[1], stream());
  mx::Dtype acc = d_gate.dtype();
  std::optional<mx::array> total;
  for (size_t i = 0; i < argnums.size(); ++i) {
    mx::array term = mx::multiply(
        mx::astype(tangents[i], acc, stream()), argnums[i] == 0 ? d_gate : d_up, stream());
    total = total ? mx::add(*total, term, stream()) : term;
  }
  return {mx::astype(*total, primals[0].dtype(), stream())};
}

std::pair<std::vector<mx::array>, std::vector<int>> SwiGLU::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  int batch = axes[0] >= 0 ? inputs[0].shape(axes[0]) : inputs[1].shape(axes[1]);
  std::vector<mx::array> moved;
  for (int i = 0; i < 2; ++i) {
    if (axes[i] >= 0) {
      moved.push_back(mx::moveaxis(inputs[i], axes[i], 0, stream()));
    } else {
      mx::Shape shape = inputs[i].shape();
      shape.insert(shape.begin(), batch);
      moved.push_back(mx::broadcast_to(mx::expand_dims(inputs[i], 0, stream()), shape, stream()));
    }
  }
  return {{swiglu(moved[0], moved[1], fallback(), stream())}, {0}};
}

bool SwiGLU::is_equivalent(const mx::Primitive& other) const {
  return dynamic_cast<const SwiGLU*>(&other) != nullptr;
}

mx::array swiglu(const mx::array& gate, const mx::array& up, Fallback fallback, mx::Stream stream) {
  std::vector<mx::array> inputs{gate, up};
#ifdef MLXR_METAL
  // The Metal kernel reads gate and up as flat contiguous spans (csrc/metal/README.md,
  // "Layouts"); broadcast views are materialised here.
  if (stream.device == mx::Device::gpu) {
    inputs = {mx::contiguous(gate, false, stream), mx::contiguous(up, false, stream)};
  }
#endif
  return mx::array(gate.shape(), gate.dtype(), std::make_shared<SwiGLU>(stream, std::move(fallback)),
                   std::move(inputs));
}

} // namespace mlxr

#include "rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "cpu/block.h"
#include "cpu/dtype_dispatch.h"
#include "cpu/isa.h"
#include "cpu/parallel_rows.h"
#include "cpu/rows.h"
#include "cpu/sincos.h"
#include "kernel_log.h"
#ifdef MLXR_METAL
#include "metal/contiguous.h"
#endif
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"
#include "mlx/transforms.h"

namespace mlxr {

namespace {

// Rows are visited as (offset group g, row m within the group, position t): all rows of a
// group at one position share their angles, so cos/sin are computed once per (g, t) into a
// table and reused by every head.
struct RopeArgs {
  const void* x;
  void* out;
  const cpu::RowWalker* rows;
  int64_t t_stride; // element stride of axis -2 in x
  int64_t n_t; // T, the positions
  int64_t t_begin; // the positions [t_begin, t_end) of this call
  int64_t t_end;
  int64_t n_groups; // distinct offsets: 1, or B for per-batch offsets
  int64_t group_rows; // rows per (group, position)
  int64_t row_size; // D
  int dims;
  bool traditional;
  bool forward;
  bool in_place;
  const int32_t* offsets; // n_groups of them
  const void* inv_freqs; // dims / 2, contiguous, accumulator dtype
  double scale;
};

// Table bytes per block of positions. Big enough that each head's rows stream as long runs
// (a (1, 32, 4096, 128) float16 RoPE ran ~25% slower with 64 KiB than with 1 MiB), small
// enough to stay in L2/L3.
constexpr int64_t kTableBytes = 1 << 20;

template <typename V>
MLXR_INLINE V swap_pairs(V v) {
#if defined(__clang__)
  return __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
#else
  using Elem = std::remove_reference_t<decltype(v[0])>;
  using Index = std::conditional_t<sizeof(Elem) == 4, cpu::VecI32, cpu::VecI64>;
  return __builtin_shuffle(v, Index{1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
#endif
}

template <typename V>
MLXR_INLINE V duplicate_pairs(V v) {
#if defined(__clang__)
  return __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
#else
  using Elem = std::remove_reference_t<decltype(v[0])>;
  using Index = std::conditional_t<sizeof(Elem) == 4, cpu::VecI32, cpu::VecI64>;
  return __builtin_shuffle(v, Index{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7});
#endif
}

// sin and cos of n angles; float32 vectorised (arrays padded to whole blocks), float64 (the
// oracle path) through libm.
MLXR_INLINE void sincos_n(const float* theta, float* s, float* c, int n, bool in_range) {
  if (!in_range) {
    for (int i = 0; i < n; ++i) {
      s[i] = std::sin(theta[i]);
      c[i] = std::cos(theta[i]);
    }
    return;
  }
  for (int i = 0; i < n; i += cpu::kBlock) {
    cpu::VecF sv, cv;
    cpu::sincos_block(cpu::load_vec<cpu::VecF>(theta + i), sv, cv);
    cpu::store_vec(sv, s + i);
    cpu::store_vec(cv, c + i);
  }
}

MLXR_INLINE void sincos_n(const double* theta, double* s, double* c, int n, bool) {
  for (int i = 0; i < n; ++i) {
    s[i] = std::sin(theta[i]);
    c[i] = std::cos(theta[i]);
  }
}

// Fills one position's table: cos[i] and sin[i] for the dims/2 pairs, sin negated for the
// inverse map.
template <typename Acc>
MLXR_INLINE void fill_table(
    Acc position, const Acc* inv_freqs, Acc max_inv_freq, int half, bool forward, Acc* theta,
    Acc* cos_row, Acc* sin_row) {
  for (int i = 0; i < half; ++i) {
    theta[i] = position * inv_freqs[i];
  }
  // The negated test also sends NaN (a non-finite inverse frequency) to libm.
  bool in_range = std::abs(position) * max_inv_freq < Acc(cpu::kSincosMaxArg / 2);
  sincos_n(theta, sin_row, cos_row, half, in_range);
  if (!forward) {
    for (int i = 0; i < half; ++i) {
      sin_row[i] = -sin_row[i];
    }
  }
}

// Up to kRowsAtOnce rows at one position share each table load: the table is read once per
// group instead of once per row (it is as many bytes as a float16 row).
constexpr int kRowsAtOnce = 4;

template <typename S>
struct RowGroup {
  const S* in[kRowsAtOnce];
  S* out[kRowsAtOnce];
};

template <typename D, typename Isa, int Count>
MLXR_INLINE void rotate_halves(
    const RowGroup<typename D::storage>& rows, const typename D::acc* cos_row,
    const typename D::acc* sin_row, int half) {
  using Acc = typename D::acc;
  using B = cpu::Block<D, Isa>;
  using V = typename B::V;
  int i = 0;
  for (; i + cpu::kBlock <= half; i += cpu::kBlock) {
    V c = cpu::load_vec<V>(cos_row + i), s = cpu::load_vec<V>(sin_row + i);
    for (int r = 0; r < Count; ++r) {
      V a = B::load(rows.in[r] + i), b = B::load(rows.in[r] + half + i);
      B::store(a * c - b * s, rows.out[r] + i);
      B::store(a * s + b * c, rows.out[r] + half + i);
    }
  }
  for (; i < half; ++i) {
    for (int r = 0; r < Count; ++r) {
      Acc a = D::load(rows.in[r][i]), b = D::load(rows.in[r][half + i]);
      rows.out[r][i] = D::store(a * cos_row[i] - b * sin_row[i]);
      rows.out[r][half + i] = D::store(a * sin_row[i] + b * cos_row[i]);
    }
  }
}

// Interleaved pairs: out = x * (c0, c0, c1, c1, ...) + swap_pairs(x) * (-s0, s0, -s1, s1, ...).
// The table holds one cos/sin per pair and is padded so a block may read past dims/2.
template <typename D, typename Isa, int Count>
MLXR_INLINE void rotate_pairs(
    const RowGroup<typename D::storage>& rows, const typename D::acc* cos_row,
    const typename D::acc* sin_row, int dims) {
  using Acc = typename D::acc;
  using B = cpu::Block<D, Isa>;
  using V = typename B::V;
  V alternate;
  for (int k = 0; k < cpu::kBlock; ++k) {
    alternate[k] = k % 2 ? Acc(1) : Acc(-1);
  }
  int j = 0;
  for (; j + cpu::kBlock <= dims; j += cpu::kBlock) {
    V c = duplicate_pairs(cpu::load_vec<V>(cos_row + j / 2));
    V s = duplicate_pairs(cpu::load_vec<V>(sin_row + j / 2)) * alternate;
    for (int r = 0; r < Count; ++r) {
      V v = B::load(rows.in[r] + j);
      B::store(v * c + swap_pairs(v) * s, rows.out[r] + j);
    }
  }
  for (; j < dims; j += 2) {
    Acc c = cos_row[j / 2], s = sin_row[j / 2];
    for (int r = 0; r < Count; ++r) {
      Acc a = D::load(rows.in[r][j]), b = D::load(rows.in[r][j + 1]);
      rows.out[r][j] = D::store(a * c - b * s);
      rows.out[r][j + 1] = D::store(a * s + b * c);
    }
  }
}

template <typename D, typename Isa>
MLXR_INLINE void rope_rows_impl(RopeArgs args) {
  using S = typename D::storage;
  using Acc = typename D::acc;
  const S* x = static_cast<const S*>(args.x);
  S* out = static_cast<S*>(args.out);
  const Acc* inv_freqs = static_cast<const Acc*>(args.inv_freqs);
  int dims = args.dims;
  int half = dims / 2;
  int64_t n = args.row_size;
  int64_t step = args.rows->step();
  // Whole blocks plus one: rotate_pairs reads up to half a block past dims/2.
  int width = (half + cpu::kBlock - 1) / cpu::kBlock * cpu::kBlock + cpu::kBlock;
  int64_t per_position = 2 * width * static_cast<int64_t>(sizeof(Acc));
  int64_t block_t = std::min<int64_t>(std::max<int64_t>(1, kTableBytes / per_position),
                                      args.t_end - args.t_begin);
  std::vector<Acc> cos_tab(block_t * width), sin_tab(block_t * width), theta(width);
  std::vector<S> gathered(step == 1 ? 0 : kRowsAtOnce * n);
  Acc scale = static_cast<Acc>(args.scale);
  Acc max_inv_freq = 0;
  for (int i = 0; i < half; ++i) {
    Acc v = std::abs(inv_freqs[i]);
    max_inv_freq = v > max_inv_freq || v != v ? v : max_inv_freq; // NaN sticks
  }

  // Rotates rows m .. m + count - 1 at block position j.
  int64_t n_m = args.group_rows;
  std::vector<int64_t> m_offsets(n_m);
  S* out_block = nullptr;
  int64_t t0 = 0;
  auto rotate_group = [&](int64_t m, auto count_tag, int64_t j) {
    constexpr int count = decltype(count_tag)::value;
    RowGroup<S> rows;
    for (int r = 0; r < count; ++r) {
      const S* row = x + m_offsets[m + r] + (t0 + j) * args.t_stride;
      if (step != 1) {
        S* buffer = gathered.data() + r * n;
        for (int64_t i = 0; i < n; ++i) {
          buffer[i] = row[i * step];
        }
        row = buffer;
      }
      rows.in[r] = row;
      rows.out[r] = out_block + ((m + r) * args.n_t + j) * n;
    }
    if (args.traditional) {
      rotate_pairs<D, Isa, count>(rows, &cos_tab[j * width], &sin_tab[j * width], dims);
    } else {
      rotate_halves<D, Isa, count>(rows, &cos_tab[j * width], &sin_tab[j * width], half);
    }
    if (!args.in_place && dims < n) {
      for (int r = 0; r < count; ++r) {
        std::memcpy(rows.out[r] + dims, rows.in[r] + dims, sizeof(S) * (n - dims));
      }
    }
  };
  using One = std::integral_constant<int, 1>;
  using Group = std::integral_constant<int, kRowsAtOnce>;

  for (int64_t g = 0; g < args.n_groups; ++g) {
    for (int64_t m = 0; m < n_m; ++m) {
      m_offsets[m] = args.rows->offset((g * n_m + m) * args.n_t);
    }
    // Walk whichever of (row m, position t) is closer in memory innermost, so the input is
    // read in long runs: t for (B, H, T, D), m for the transposed (B, T, H, D) view.
    bool m_inner = n_m > 1 && std::abs(m_offsets[1] - m_offsets[0]) < std::abs(args.t_stride);
    Acc offset = static_cast<Acc>(args.offsets[g]);
    for (t0 = args.t_begin; t0 < args.t_end; t0 += block_t) {
      int64_t n_block = std::min(block_t, args.t_end - t0);
      for (int64_t j = 0; j < n_block; ++j) {
        // (t + offset) * scale, rounded step by step as the reference rounds it.
        Acc position = (static_cast<Acc>(t0 + j) + offset) * scale;
        fill_table(position, inv_freqs, max_inv_freq, half, args.forward, theta.data(),
                   &cos_tab[j * width], &sin_tab[j * width]);
      }
      out_block = out + (g * n_m * args.n_t + t0) * n;
      if (m_inner) {
        // One row at a time: its table row stays in L1 across the m loop anyway.
        for (int64_t j = 0; j < n_block; ++j) {
          for (int64_t m = 0; m < n_m; ++m) {
            rotate_group(m, One{}, j);
          }
        }
      } else {
        int64_t m = 0;
        for (; m + kRowsAtOnce <= n_m; m += kRowsAtOnce) {
          for (int64_t j = 0; j < n_block; ++j) {
            rotate_group(m, Group{}, j);
          }
        }
        for (; m < n_m; ++m) {
          for (int64_t j = 0; j < n_block; ++j) {
            rotate_group(m, One{}, j);
          }
        }
      }
    }
  }
}

MLXR_ISA_DISPATCH(rope_rows, rope_rows_impl)

template <typename Acc>
std::vector<Acc> gather_vector(const mx::array& a) {
  std::vector<Acc> out(a.size());
  const Acc* data = a.data<Acc>();
  int64_t step = a.ndim() ? a.strides()[0] : 0;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = data[static_cast<int64_t>(i) * step];
  }
  return out;
}

template <typename D>
void run_rope(RopeArgs args, const mx::array& x, const mx::array& offset,
              const mx::array& inv_freqs, const std::string& kernel) {
  using Acc = typename D::acc;
  cpu::RowWalker rows(x);
  std::vector<int32_t> offsets = gather_vector<int32_t>(offset);
  std::vector<Acc> inv = gather_vector<Acc>(inv_freqs);
  args.rows = &rows;
  args.offsets = offsets.data();
  args.inv_freqs = inv.data();
  args.row_size = x.shape(-1);
  args.n_t = x.shape(-2);
  args.t_stride = x.strides()[x.ndim() - 2];
  args.n_groups = offsets.size() > 1 ? static_cast<int64_t>(offsets.size()) : 1;
  int64_t n_rows = static_cast<int64_t>(x.size()) / args.row_size;
  args.group_rows = n_rows / (args.n_groups * args.n_t);
  // Positions are independent (each computes its own angles): split them over threads.
  int64_t position_bytes = 2 * (n_rows / args.n_t) * args.row_size * static_cast<int64_t>(x.itemsize());
  cpu::parallel_rows(args.n_t, position_bytes, [&](int64_t begin, int64_t end) {
    RopeArgs part = args;
    part.t_begin = begin;
    part.t_end = end;
    rope_rows<D>(part);
  });
  record_kernel("cpu", {kernel});
}

} // namespace

void RoPE::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  const mx::array& offset = inputs[1];
  const mx::array& inv_freqs = inputs[2];
  mx::array& out = outputs[0];
  // A donated row-contiguous x is rotated in place: each pair is read before it is written.
  bool in_place = x.is_donatable() && x.flags().row_contiguous;
  if (in_place) {
    out.copy_shared_buffer(x);
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }
  if (out.size() == 0) {
    return;
  }

  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(x);
  encoder.set_input_array(offset);
  encoder.set_input_array(inv_freqs);
  encoder.set_output_array(out);
  RopeArgs args{};
  args.dims = dims_;
  args.traditional = traditional_;
  args.forward = forward_;
  args.in_place = in_place;
  args.scale = scale_;
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x),
                    offset = mx::array::unsafe_weak_copy(offset),
                    inv_freqs = mx::array::unsafe_weak_copy(inv_freqs),
                    out = mx::array::unsafe_weak_copy(out), args]() mutable {
    args.x = x.data<void>();
    args.out = out.data<void>();
    cpu::dispatch_float(out.dtype(), "rope", [&](auto d, const std::string& kernel) {
      run_rope<decltype(d)>(args, x, offset, inv_freqs, kernel);
    });
  });
}

std::vector<mx::array> RoPE::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  const mx::array& x = primals[0];
  const mx::array& offset = primals[1];
  std::vector<mx::array> grads;
  for (int arg : argnums) {
    if (arg == 0) {
      // The rotation is orthogonal: its transpose is the rotation by -theta.
      grads.push_back(rope(cotangents[0], offset, primals[2], dims_, traditional_, scale_,
                           !forward_, inverse_, fallback(), stream()));
    } else if (arg == 1) {
      grads.push_back(mx::zeros_like(offset, stream())); // integer positions
    } else {
      Fallback at_x = [x, offset, f = fallback()](const std::vector<mx::array>& in) {
        return f({x, offset, in[0]});
      };
      grads.push_back(mx::vjp(at_x, {primals[2]}, cotangents).second[0]);
    }
  }
  return grads;
}

std::vector<mx::array> RoPE::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  const mx::array& x = primals[0];
  const mx::array& offset = primals[1];
  std::optional<mx::array> total;
  for (size_t k = 0; k < argnums.size(); ++k) {
    std::optional<mx::array> term;
    if (argnums[k] == 0) {
      term = rope(tangents[k], offset, primals[2], dims_, traditional_, scale_, forward_,
                  fallback(), inverse_, stream());
    } else if (argnums[k] == 2) {
      Fallback at_x = [x, offset, f = fallback()](const std::vector<mx::array>& in) {
        return f({x, offset, in[0]});
      };
      term = mx::jvp(at_x, {primals[2]}, {tangents[k]}).second[0];
    }
    if (term) {
      total = total ? mx::add(*total, *term, stream()) : *term;
    }
  }
  return {total ? *total : mx::zeros_like(x, stream())};
}

std::pair<std::vector<mx::array>, std::vector<int>> RoPE::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  const mx::array& x = inputs[0];
  const mx::array& offset = inputs[1];
  bool x_batched = axes[0] >= 0;
  bool offset_batched = axes[1] >= 0;
  if (axes[2] < 0 && !offset_batched && x_batched) {
    // The vmapped axis goes to 1: axis 0 stays the batch of per-batch offsets and the
    // position and feature axes stay last.
    mx::array moved = mx::moveaxis(x, axes[0], 1, stream());
    return {{rope(moved, offset, inputs[2], dims_, traditional_, scale_, forward_, fallback(),
                  inverse_, stream())},
            {1}};
  }
  if (axes[2] < 0 && offset_batched && offset.ndim() == 1) {
    // One scalar offset per vmapped example: the vmapped axis becomes the per-batch axis
    // (a broadcast view when x itself is shared; the kernel reads strides).
    mx::array moved = x_batched
        ? mx::moveaxis(x, axes[0], 0, stream())
        : mx::broadcast_to(mx::expand_dims(x, 0, stream()),
                           [&] {
                             mx::Shape shape = x.shape();
                             shape.insert(shape.begin(), offset.shape(0));
                             return shape;
                           }(),
                           stream());
    return {{rope(moved, offset, inputs[2], dims_, traditional_, scale_, forward_, fallback(),
                  inverse_, stream())},
            {0}};
  }
  return FusedPrimitive::vmap(inputs, axes);
}

bool RoPE::is_equivalent(const mx::Primitive& other) const {
  auto* o = dynamic_cast<const RoPE*>(&other);
  return o && dims_ == o->dims_ && traditional_ == o->traditional_ && scale_ == o->scale_ &&
      forward_ == o->forward_;
}

mx::array rope(
    const mx::array& x,
    const mx::array& offset,
    const mx::array& inv_freqs,
    int dims,
    bool traditional,
    double scale,
    bool forward,
    Fallback fallback,
    Fallback inverse,
    mx::Stream stream) {
  mx::Dtype acc = accumulation_dtype(x.dtype());
  std::vector<mx::array> inputs{
      x, mx::astype(offset, mx::int32, stream), mx::astype(inv_freqs, acc, stream)};
#ifdef MLXR_METAL
  inputs[0] = metal::contiguous_rows(x, stream);
#endif
  return mx::array(
      x.shape(),
      x.dtype(),
      std::make_shared<RoPE>(stream, std::move(fallback), std::move(inverse), dims, traditional,
                             scale, forward),
      std::move(inputs));
}

} // namespace mlxr

#include "softmax.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/block.h"
#include "cpu/buffers.h"
#include "cpu/dtype_dispatch.h"
#include "cpu/isa.h"
#include "cpu/parallel_rows.h"
#include "cpu/vec_math.h"
#include "kernel_log.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"

namespace mlxr {

namespace {

// Blocks per chunk of the online pass: one rescale exp per chunk, so 16 blocks make it ~6 %.
constexpr int64_t kChunkBlocks = 16;
constexpr int64_t kChunk = kChunkBlocks * cpu::kBlock;

// float16/bfloat16 outputs take the cheaper exp2 (its error is ~1 % of their rounding step).
template <typename D>
constexpr bool kHalfOutput = std::is_same_v<D, cpu::F16> || std::is_same_v<D, cpu::BF16>;

// A lane's running sum of exp terms, taking one chunk's sum at a time with Kahan
// compensation: plain adds along a 32768-long axis of equal terms drifted 8.6e-5 relative
// (as mx.softmax does), past the float32 tolerance against a float64 oracle.
template <typename V>
struct LaneSum {
  V s = {}, carry = {};
  MLXR_INLINE void rescale(V factor) {
    s = s * factor;
    carry = carry * factor;
  }
  MLXR_INLINE void add(V chunk) {
    cpu::kahan_add(s, carry, chunk);
  }
  MLXR_INLINE V value() const {
    return s - carry;
  }
};

// exp(x - m) for x <= m. The difference is taken first: x * log2(e) could overflow.
template <typename D, typename V>
MLXR_INLINE V exp_diff(V x, V m) {
  if constexpr (kHalfOutput<D>) {
    return cpu::exp2_nonpositive((x - m) * cpu::kLog2e);
  } else {
    return cpu::exp_nonpositive(x - m);
  }
}

// The rows of a softmax over the last `n_axes` axes: those axes flattened row-major. When they
// collapse into one strided axis (always so for one axis), element i of a row sits at
// i * step; otherwise at element_offsets[i]. Leading axes are walked row-major.
class SoftmaxRows {
 public:
  SoftmaxRows(const mx::array& x, int n_axes) {
    int nd = static_cast<int>(x.ndim());
    int lead = nd - n_axes;
    for (int i = 0; i < lead; ++i) {
      lead_shape_.push_back(x.shape(i));
      lead_strides_.push_back(x.strides()[i]);
    }
    bool collapses = true;
    int64_t span = 0; // stride the next non-unit axis outwards must have to collapse
    for (int i = nd - 1; i >= lead; --i) {
      row_size_ *= x.shape(i);
      if (x.shape(i) == 1) {
        continue;
      }
      if (span == 0) {
        step_ = x.strides()[i];
      } else if (x.strides()[i] != span) {
        collapses = false;
      }
      span = x.strides()[i] * x.shape(i);
    }
    // Leading axes that nest like a row-major array put row r at r * row_stride_ (no div/mod).
    row_stride_ = lead > 0 ? lead_strides_.back() : 0;
    for (int i = lead - 2; i >= 0 && row_stride_ >= 0; --i) {
      if (lead_shape_[i] > 1 && lead_strides_[i] != lead_strides_[i + 1] * lead_shape_[i + 1]) {
        row_stride_ = -1;
      }
    }
    if (!collapses) {
      element_offsets_.resize(row_size_);
      for (int64_t e = 0; e < row_size_; ++e) {
        int64_t rest = e, off = 0;
        for (int i = nd - 1; i >= lead; --i) {
          off += (rest % x.shape(i)) * x.strides()[i];
          rest /= x.shape(i);
        }
        element_offsets_[e] = off;
      }
    }
  }

  int64_t offset(int64_t row) const {
    if (row_stride_ >= 0) {
      return row * row_stride_;
    }
    int64_t off = 0;
    for (int i = static_cast<int>(lead_shape_.size()) - 1; i >= 0; --i) {
      off += (row % lead_shape_[i]) * lead_strides_[i];
      row /= lead_shape_[i];
    }
    return off;
  }
  int64_t element(int64_t i) const {
    return element_offsets_.empty() ? i * step_ : element_offsets_[i];
  }
  bool collapses() const {
    return element_offsets_.empty();
  }
  int64_t row_size() const {
    return row_size_;
  }
  int64_t step() const {
    return step_;
  }
  // Rows along the innermost leading axis, and its stride (0 when there is none).
  int64_t inner_rows() const {
    return lead_shape_.empty() ? 0 : lead_shape_.back();
  }
  int64_t inner_stride() const {
    return lead_strides_.empty() ? 0 : lead_strides_.back();
  }

 private:
  std::vector<int64_t> lead_shape_, lead_strides_;
  int64_t row_size_ = 1;
  int64_t step_ = 1;
  int64_t row_stride_ = -1; // -1: rows need the general walk
  std::vector<int64_t> element_offsets_;
};

struct SoftmaxArgs {
  const void* x;
  int64_t row_begin; // the rows [row_begin, row_end) of this call (lane mode: whole groups)
  int64_t row_end;
  int64_t row_size;
  const SoftmaxRows* rows;
  void* out;
  bool out_like_x; // out has x's strides (x dense): row r of out starts at rows->offset(r)
  int64_t lane_rows; // > 0: rows are strided but neighbours are adjacent; rows per group
};

// A block at `off` (< n); in the row's last chunk its part past the row's end is padded with
// -inf, whose exp is 0.
template <typename D, typename Isa, bool kTail>
MLXR_INLINE cpu::Vec<typename D::acc> chunk_block(
    const typename D::storage* x, int64_t off, int64_t n) {
  using Acc = typename D::acc;
  if (!kTail || off + cpu::kBlock <= n) {
    return cpu::IoBlock<D, Isa>::load(x + off);
  }
  return cpu::load_partial<D, Isa>(x + off, n - off, -std::numeric_limits<Acc>::infinity());
}

// The next row's input and output, prefetched into L2 while this row computes: one core's
// memory streams otherwise stall on the compute (exp) instead of overlapping it.
struct RowAhead {
  const void* x = nullptr;
  void* out = nullptr;
};

// Online pass over one chunk, per lane: the running max m absorbs the chunk's max, the running
// sum s is rescaled by exp(m_old - m_new), and e = exp(x - m_new) goes to `scratch` (pass 2
// rescales it, so x is read from memory once and exp runs once per element).
template <typename D, typename Isa, bool kTail>
MLXR_INLINE void absorb_chunk(
    const typename D::storage* x,
    int64_t start,
    int64_t n,
    typename D::acc* scratch,
    cpu::Vec<typename D::acc>& m,
    LaneSum<cpu::Vec<typename D::acc>>& s,
    const RowAhead& ahead) {
  using V = cpu::Vec<typename D::acc>;
  // The row's last chunk stops at its last (possibly partial) block.
  int64_t n_blocks = kTail ? (n - start + cpu::kBlock - 1) / cpu::kBlock : kChunkBlocks;
  V chunk_max = chunk_block<D, Isa, kTail>(x, start, n);
  for (int64_t b = 1; b < n_blocks; ++b) {
    V v = chunk_block<D, Isa, kTail>(x, start + b * cpu::kBlock, n);
    chunk_max = v > chunk_max ? v : chunk_max; // NaN never wins: it reaches s through exp
  }
  V m_new = chunk_max > m ? chunk_max : m;
  if (start > 0) { // s is still 0 in the first chunk
    s.rescale(exp_diff<D>(m, m_new));
  }
  V chunk_sum = {};
  for (int64_t b = 0; b < n_blocks; ++b) {
    int64_t off = start + b * cpu::kBlock;
    if (ahead.x) {
      __builtin_prefetch(static_cast<const typename D::storage*>(ahead.x) + off, 0, 2);
      __builtin_prefetch(static_cast<typename D::storage*>(ahead.out) + off, 1, 2);
    }
    V e = exp_diff<D>(chunk_block<D, Isa, kTail>(x, off, n), m_new);
    chunk_sum += e;
    cpu::store_vec(e, scratch + off);
  }
  s.add(chunk_sum);
  m = m_new;
}

// Special values need no branch: lanes start at the lowest finite value, so an all -inf row
// ends with S = 0 and y = 0 * inf = NaN; NaN or +inf make S NaN (exp(NaN), exp(inf - inf)),
// so the whole row is NaN -- exactly what the reference's max/exp/sum gives.
template <typename D, typename Isa>
MLXR_INLINE void softmax_row(
    const typename D::storage* x,
    typename D::storage* out,
    int64_t n,
    typename D::acc* scratch,
    typename D::acc* chunk_max,
    const RowAhead& ahead = {}) {
  using Acc = typename D::acc;
  using V = cpu::Vec<Acc>;
  V m = cpu::broadcast<V>(std::numeric_limits<Acc>::lowest());
  LaneSum<V> s;
  int64_t n_full = n / kChunk;
  for (int64_t c = 0; c < n_full; ++c) {
    absorb_chunk<D, Isa, false>(x, c * kChunk, n, scratch, m, s, ahead);
    cpu::store_vec(m, chunk_max + c * cpu::kBlock);
  }
  int64_t n_chunks = n_full;
  if (n_full * kChunk < n) {
    absorb_chunk<D, Isa, true>(x, n_full * kChunk, n, scratch, m, s, ahead);
    cpu::store_vec(m, chunk_max + n_chunks++ * cpu::kBlock);
  }

  V max_v = cpu::broadcast<V>(cpu::tree_max(m));
  Acc inv_sum = Acc(1) / cpu::tree_sum(s.value() * exp_diff<D>(m, max_v));

  // A row with a finite 1/sum (sum >= 1 unless it is NaN or 0) has every output in [0, 1].
  bool finite_row = inv_sum <= Acc(1);
  for (int64_t c = 0; c < n_chunks; ++c) {
    V scale = exp_diff<D>(cpu::load_vec<V>(chunk_max + c * cpu::kBlock), max_v) * inv_sum;
    int64_t end = std::min(n, (c + 1) * kChunk);
    int64_t off = c * kChunk;
    for (; off + cpu::kBlock <= end; off += cpu::kBlock) {
      V y = cpu::load_vec<V>(scratch + off) * scale;
      if (finite_row) {
        cpu::IoBlock<D, Isa>::store_not_nan(y, out + off);
      } else {
        cpu::IoBlock<D, Isa>::store(y, out + off);
      }
    }
    if (off < end) {
      cpu::store_partial<D, Isa>(cpu::load_vec<V>(scratch + off) * scale, out + off, end - off);
    }
  }
}

// Sixteen neighbouring rows at once, one per lane, for a softmax over a non-last axis of a
// dense array: row i of the group is element i * step of every lane, so each block load and
// store is contiguous, and max and sum stay per lane (no cross-lane step). Same online pass.
template <typename D, typename Isa>
MLXR_INLINE void softmax_lanes(
    const typename D::storage* x,
    typename D::storage* out,
    int64_t n,
    int64_t step,
    int64_t lanes,
    typename D::acc* scratch,
    typename D::acc* chunk_max) {
  using Acc = typename D::acc;
  using V = cpu::Vec<Acc>;
  constexpr Acc neg_inf = -std::numeric_limits<Acc>::infinity();
  auto load = [&](int64_t i) {
    return lanes == cpu::kBlock ? cpu::IoBlock<D, Isa>::load(x + i * step)
                                : cpu::load_partial<D, Isa>(x + i * step, lanes, neg_inf);
  };
  V m = cpu::broadcast<V>(std::numeric_limits<Acc>::lowest());
  LaneSum<V> s;
  int64_t n_chunks = (n + kChunkBlocks - 1) / kChunkBlocks;
  for (int64_t c = 0; c < n_chunks; ++c) {
    int64_t begin = c * kChunkBlocks, end = std::min(n, begin + kChunkBlocks);
    V block_max = load(begin);
    for (int64_t i = begin + 1; i < end; ++i) {
      V v = load(i);
      block_max = v > block_max ? v : block_max;
    }
    V m_new = block_max > m ? block_max : m;
    s.rescale(exp_diff<D>(m, m_new));
    V chunk_sum = {};
    for (int64_t i = begin; i < end; ++i) {
      V e = exp_diff<D>(load(i), m_new);
      chunk_sum += e;
      cpu::store_vec(e, scratch + i * cpu::kBlock);
    }
    s.add(chunk_sum);
    cpu::store_vec(m_new, chunk_max + c * cpu::kBlock);
    m = m_new;
  }
  V inv_sum = cpu::broadcast<V>(Acc(1)) / s.value();
  for (int64_t c = 0; c < n_chunks; ++c) {
    V scale = exp_diff<D>(cpu::load_vec<V>(chunk_max + c * cpu::kBlock), m) * inv_sum;
    for (int64_t i = c * kChunkBlocks; i < std::min(n, (c + 1) * kChunkBlocks); ++i) {
      V y = cpu::load_vec<V>(scratch + i * cpu::kBlock) * scale;
      if (lanes == cpu::kBlock) {
        cpu::IoBlock<D, Isa>::store(y, out + i * step);
      } else {
        cpu::store_partial<D, Isa>(y, out + i * step, lanes);
      }
    }
  }
}

template <typename D, typename Isa>
MLXR_INLINE void softmax_rows_impl(SoftmaxArgs args) {
  using S = typename D::storage;
  using Acc = typename D::acc;
  const S* x = static_cast<const S*>(args.x);
  S* out = static_cast<S*>(args.out);
  int64_t n = args.row_size;
  int64_t step = args.rows->collapses() ? args.rows->step() : 0; // 0: gather by offsets
  // Scratch: exp values (kBlock lanes per element in lane mode) and each chunk's running max.
  bool lane_mode = args.lane_rows > 0;
  int64_t n_chunks = lane_mode ? (n + kChunkBlocks - 1) / kChunkBlocks : (n + kChunk - 1) / kChunk;
  std::vector<Acc> scratch(lane_mode ? n * cpu::kBlock : n_chunks * kChunk);
  std::vector<Acc> chunk_max(n_chunks * cpu::kBlock);
  if (lane_mode) {
    for (int64_t first = args.row_begin; first < args.row_end; first += args.lane_rows) {
      for (int64_t j = 0; j < args.lane_rows; j += cpu::kBlock) {
        int64_t offset = args.rows->offset(first + j);
        int64_t lanes = std::min<int64_t>(cpu::kBlock, args.lane_rows - j);
        softmax_lanes<D, Isa>(x + offset, out + offset, n, step, lanes, scratch.data(), chunk_max.data());
      }
    }
    return;
  }
  std::vector<S> gathered(step == 1 ? 0 : n);
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const S* row = x + args.rows->offset(r);
    if (step != 1) {
      // Strided rows are gathered once so the online pass reads contiguous data.
      for (int64_t i = 0; i < n; ++i) {
        gathered[i] = row[args.rows->element(i)];
      }
      row = gathered.data();
    }
    S* out_row = out + (args.out_like_x ? args.rows->offset(r) : r * n);
    if (step != 1 && args.out_like_x) {
      softmax_row<D, Isa>(row, gathered.data(), n, scratch.data(), chunk_max.data());
      for (int64_t i = 0; i < n; ++i) {
        out_row[i * step] = gathered[i];
      }
    } else {
      RowAhead ahead;
      if (step == 1 && r + 1 < args.row_end) {
        ahead.x = x + args.rows->offset(r + 1);
        ahead.out = out + (args.out_like_x ? args.rows->offset(r + 1) : (r + 1) * n);
      }
      softmax_row<D, Isa>(row, out_row, n, scratch.data(), chunk_max.data(), ahead);
    }
  }
}

MLXR_ISA_DISPATCH(softmax_rows, softmax_rows_impl)

template <typename D>
void run_softmax(const mx::array& x, mx::array& out, int n_axes, bool out_like_x,
                 const std::string& kernel) {
  SoftmaxRows rows(x, n_axes);
  int64_t row_size = rows.row_size();
  int64_t n_rows = row_size ? static_cast<int64_t>(x.size()) / row_size : 0;
  // Lane mode needs neighbouring rows adjacent in x and in out.
  bool lanes = out_like_x && rows.step() != 1 && rows.inner_stride() == 1;
  int64_t lane_rows = lanes ? rows.inner_rows() : 0;
  // Lane mode splits whole groups of lane_rows rows.
  int64_t unit = lanes ? lane_rows : 1;
  int64_t unit_bytes = 2 * unit * row_size * static_cast<int64_t>(x.itemsize());
  cpu::parallel_rows(unit ? n_rows / unit : 0, unit_bytes, [&](int64_t begin, int64_t end) {
    softmax_rows<D>(SoftmaxArgs{x.data<void>(), begin * unit, end * unit, row_size, &rows,
                                out.data<void>(), out_like_x, lane_rows});
  });
  record_kernel("cpu", {kernel});
}

// y * (t - sum(t * y)) over the last n_axes axes in the accumulation dtype, rounded once.
mx::array softmax_linearised(const mx::array& y, const mx::array& t, int n_axes, mx::Stream s) {
  mx::Dtype acc = accumulation_dtype(y.dtype());
  mx::array ya = mx::astype(y, acc, s);
  mx::array ta = mx::astype(t, acc, s);
  std::vector<int> axes;
  for (int i = -n_axes; i < 0; ++i) {
    axes.push_back(i);
  }
  mx::array dot = mx::sum(mx::multiply(ta, ya, s), axes, true, s);
  return mx::astype(mx::multiply(ya, mx::subtract(ta, dot, s), s), y.dtype(), s);
}

} // namespace

void Softmax::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  // A dense x gives out its own layout (a softmax over a non-last axis then reads and writes
  // contiguous blocks); a donated one is overwritten in place, since each row (or group of
  // rows) is read into scratch before any of it is written.
  bool out_like_x = cpu::dense(x) && SoftmaxRows(x, n_axes_).collapses();
  if (out_like_x && x.is_donatable()) {
    out.copy_shared_buffer(x);
  } else if (out_like_x) {
    out.set_data(mx::allocator::malloc(x.data_size() * out.itemsize()), x.data_size(), x.strides(),
                 x.flags());
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }

  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(x);
  encoder.set_output_array(out);
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x),
                    out = mx::array::unsafe_weak_copy(out), out_like_x, n_axes = n_axes_]() mutable {
    cpu::dispatch_float(out.dtype(), "softmax", [&](auto d, const std::string& kernel) {
      run_softmax<decltype(d)>(x, out, n_axes, out_like_x, kernel);
    });
  });
}

std::vector<mx::array> Softmax::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>& outputs) {
  // Half outputs are rounded: second derivatives through them lose the cancellation the
  // reference keeps in float32 (40 % off on 2-element bf16 rows), so differentiate the reference.
  if (mx::issubdtype(outputs[0].dtype(), mx::floating) && mx::size_of(outputs[0].dtype()) == 2) {
    return FusedPrimitive::vjp(primals, cotangents, argnums, outputs);
  }
  return {softmax_linearised(outputs[0], cotangents[0], n_axes_, stream())};
}

std::vector<mx::array> Softmax::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>&) {
  mx::array y = softmax(primals[0], n_axes_, fallback(), stream());
  return {softmax_linearised(y, tangents[0], n_axes_, stream())};
}

std::pair<std::vector<mx::array>, std::vector<int>> Softmax::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  // Moving the batch axis to the front keeps the softmax axes last.
  mx::array x = mx::moveaxis(inputs[0], axes[0], 0, stream());
  return {{softmax(x, n_axes_, fallback(), stream())}, {0}};
}

bool Softmax::is_equivalent(const mx::Primitive& other) const {
  auto* o = dynamic_cast<const Softmax*>(&other);
  return o && n_axes_ == o->n_axes_;
}

mx::array softmax(const mx::array& x, int n_axes, Fallback fallback, mx::Stream stream) {
  mx::array input = x;
#ifdef MLXR_METAL
  // The Metal kernel reads contiguous rows (csrc/metal/README.md, "Layouts"): a graph copy,
  // sharing the buffer when x is row-contiguous.
  if (stream.device == mx::Device::gpu) {
    input = mx::contiguous(x, false, stream);
  }
#endif
  return mx::array(
      x.shape(), x.dtype(), std::make_shared<Softmax>(stream, std::move(fallback), n_axes), {input});
}

} // namespace mlxr

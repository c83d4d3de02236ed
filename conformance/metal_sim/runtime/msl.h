// The subset of the Metal Shading Language our kernels use, as C++ for g++, plus the runtime
// that executes a dispatch on the CPU. Every thread of a threadgroup is its own fiber
// (makecontext/swapcontext): threadgroup_barrier waits for all threads of the threadgroup and
// simd collectives rendezvous the lanes of a 32-wide simdgroup, so both have real semantics.
// Device buffers are bounds-checked pointers whose accesses are race-checked per address (two
// threads touching one element, at least one writing, unordered by a barrier of their
// threadgroup). Threadgroup memory is poisoned per threadgroup and race-checked the same way;
// reading an element no thread of the threadgroup wrote is reported too.
// The driver (../_compile.py) rewrites `device T*` to msl_sim::dptr<T>, `threadgroup T*` to
// msl_sim::tgptr<T> and `threadgroup T name[N];` to a per-threadgroup allocation.
#pragma once

#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <source_location>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

// ---------------------------------------------------------------- scalar and vector types
typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned char uchar;
typedef _Float16 half;

// bfloat: round-to-nearest-even from float, NaN kept quiet (Metal's and MLX's conversion).
struct bfloat {
  uint16_t bits;
  bfloat() = default;
  bfloat(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = static_cast<uint16_t>((u >> 16) | 0x40);
    } else {
      bits = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
  }
  template <typename U, typename = std::enable_if_t<std::is_arithmetic_v<U>>>
  bfloat(U v) : bfloat(static_cast<float>(v)) {}
  operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};
typedef bfloat bfloat16_t;

// Vector types: .x/.y/.z/.w and [] access, broadcast and element-wise constructors, element-wise
// arithmetic with vectors and scalars, conversion between element types.
template <typename T, int N>
struct vec;
#define MSL_SIM_VEC_COMMON(N)                                                        \
  vec() = default;                                                                 \
  vec(T s) {                                                                       \
    for (int i = 0; i < N; ++i) elems[i] = s;                                      \
  }                                                                                \
  template <typename U>                                                            \
  explicit vec(const vec<U, N>& o) {                                               \
    for (int i = 0; i < N; ++i) elems[i] = static_cast<T>(o.elems[i]);             \
  }                                                                                \
  T& operator[](int i) { return elems[i]; }                                        \
  const T& operator[](int i) const { return elems[i]; }
template <typename T>
struct vec<T, 2> {
  union {
    struct { T x, y; };
    T elems[2];
  };
  MSL_SIM_VEC_COMMON(2)
  vec(T a, T b) : x(a), y(b) {}
};
template <typename T>
struct vec<T, 3> {
  union {
    struct { T x, y, z; };
    T elems[3];
  };
  MSL_SIM_VEC_COMMON(3)
  vec(T a, T b, T c) : x(a), y(b), z(c) {}
};
template <typename T>
struct vec<T, 4> {
  union {
    struct { T x, y, z, w; };
    T elems[4];
  };
  MSL_SIM_VEC_COMMON(4)
  vec(T a, T b, T c, T d) : x(a), y(b), z(c), w(d) {}
};
#undef MSL_SIM_VEC_COMMON

#define MSL_SIM_VEC_OP(op)                                                        \
  template <typename T, int N>                                                    \
  vec<T, N> operator op(const vec<T, N>& a, const vec<T, N>& b) {                 \
    vec<T, N> r;                                                                  \
    for (int i = 0; i < N; ++i) r.elems[i] = static_cast<T>(a.elems[i] op b.elems[i]); \
    return r;                                                                     \
  }                                                                               \
  template <typename T, int N>                                                    \
  vec<T, N> operator op(const vec<T, N>& a, T b) {                                \
    return a op vec<T, N>(b);                                                     \
  }                                                                               \
  template <typename T, int N>                                                    \
  vec<T, N> operator op(T a, const vec<T, N>& b) {                                \
    return vec<T, N>(a) op b;                                                     \
  }                                                                               \
  template <typename T, int N, typename U>                                        \
  vec<T, N>& operator op##=(vec<T, N>& a, const U& b) {                           \
    return a = a op b;                                                            \
  }
MSL_SIM_VEC_OP(+)
MSL_SIM_VEC_OP(-)
MSL_SIM_VEC_OP(*)
MSL_SIM_VEC_OP(/)
#undef MSL_SIM_VEC_OP

#define MSL_SIM_VECTORS(T) \
  typedef vec<T, 2> T##2;  \
  typedef vec<T, 3> T##3;  \
  typedef vec<T, 4> T##4;
MSL_SIM_VECTORS(uint)
MSL_SIM_VECTORS(int)
MSL_SIM_VECTORS(ushort)
MSL_SIM_VECTORS(short)
MSL_SIM_VECTORS(float)
MSL_SIM_VECTORS(half)
MSL_SIM_VECTORS(bfloat)
#undef MSL_SIM_VECTORS

namespace msl_sim {

// ---------------------------------------------------------------- faults
struct Fault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------- dispatch state
struct Buffer {
  void* data; // where the binding starts
  int64_t nbytes; // from data to the end of the allocation
  const char* name;
  int64_t offset = 0; // bytes of the allocation before data
};

enum class LaneState { ready, at_barrier, at_collective, done };

// Device memory accesses of the dispatch, per address: the last writer and the readers since
// (a thread is group serial << 16 | index; -2: several readers).
struct DeviceAccess {
  int64_t writer = -1, reader = -1;
  uint64_t write_epoch = 0, read_epoch = 0;
};

struct Lane;
using Resolver = void (*)(Lane** lanes, int width); // lanes[i] null: lane i inactive

struct Lane {
  ucontext_t ctx;
  void* stack = nullptr;
  LaneState state = LaneState::ready;
  uint3 pos_in_group{}, group_pos{}, pos_in_grid{};
  uint index = 0; // linear index in the threadgroup
  // A pending simd collective: its call site, resolver, operand and result.
  const char* site_file = nullptr;
  uint site_line = 0, site_column = 0;
  Resolver resolver = nullptr;
  alignas(16) unsigned char operand[16];
  alignas(16) unsigned char result[16];
  int64_t arg = 0;
};

struct Dispatch;
using ThreadFn = void (*)(Dispatch&, Lane&);

struct Dispatch {
  std::vector<Buffer> buffers; // by [[buffer(n)]]
  uint3 grid{}, group{};
  std::vector<Lane> lanes;
  ucontext_t scheduler;
  Lane* current = nullptr;
  ThreadFn thread_fn = nullptr;
  uint64_t group_epoch = 0; // bumped per threadgroup (threadgroup memory lifetime)
  uint64_t barrier_epoch = 0; // bumped per threadgroup_barrier
  std::vector<uint64_t> simd_barrier_epoch; // per simdgroup, bumped per simdgroup_barrier
  size_t threadgroup_bytes = 0;
  std::unordered_map<const void*, DeviceAccess> device_accesses; // by address
  std::string fault;
};

inline Dispatch*& current_dispatch() {
  static Dispatch* d = nullptr;
  return d;
}
inline Lane& lane() {
  return *current_dispatch()->current;
}

inline std::string where() {
  Dispatch* d = current_dispatch();
  if (!d || !d->current) {
    return "";
  }
  Lane& l = *d->current;
  std::ostringstream s;
  s << " (thread " << l.pos_in_grid.x << "," << l.pos_in_grid.y << "," << l.pos_in_grid.z
    << " of threadgroup " << l.group_pos.x << "," << l.group_pos.y << "," << l.group_pos.z
    << ")";
  return s.str();
}

[[noreturn]] inline void fail(const std::string& msg) {
  throw Fault(msg + where());
}

// Hands control back to the scheduler until it resumes this lane.
inline void yield(LaneState state) {
  Dispatch* d = current_dispatch();
  Lane& l = *d->current;
  l.state = state;
  swapcontext(&l.ctx, &d->scheduler);
}

// ---------------------------------------------------------------- device memory
// Threads of different threadgroups are never ordered within a dispatch; threads of one
// threadgroup are ordered by a barrier between their accesses.
inline int64_t device_thread_id() {
  Dispatch& d = *current_dispatch();
  return static_cast<int64_t>(d.group_epoch << 16 | d.current->index);
}
inline bool device_ordered(int64_t other, uint64_t epoch) {
  Dispatch& d = *current_dispatch();
  return static_cast<uint64_t>(other) >> 16 == d.group_epoch && epoch != d.barrier_epoch;
}
inline std::string describe_thread(int64_t id) {
  if (id == -2) {
    return "several threads";
  }
  return "thread " + std::to_string(id & 0xffff) + " of threadgroup #" + std::to_string((id >> 16) - 1);
}
[[noreturn]] inline void device_race(const char* what, const char* name, int64_t k, int64_t other) {
  std::ostringstream m;
  m << "device memory race: " << describe_thread(device_thread_id()) << " " << what << " " << name
    << "[" << k << "] " << (what[0] == 'r' ? "written" : "accessed") << " by " << describe_thread(other)
    << " in the same dispatch, unordered";
  fail(m.str());
}
inline void device_read(const void* addr, const char* name, int64_t k) {
  Dispatch& d = *current_dispatch();
  DeviceAccess& a = d.device_accesses[addr];
  int64_t me = device_thread_id();
  if (a.writer >= 0 && a.writer != me && !device_ordered(a.writer, a.write_epoch)) {
    device_race("reads", name, k, a.writer);
  }
  bool replace = a.reader == -1 || a.reader == me || (a.reader >= 0 && device_ordered(a.reader, a.read_epoch));
  a.reader = replace ? me : -2;
  a.read_epoch = d.barrier_epoch;
}
inline void device_write(const void* addr, const char* name, int64_t k) {
  Dispatch& d = *current_dispatch();
  DeviceAccess& a = d.device_accesses[addr];
  int64_t me = device_thread_id();
  if (a.writer >= 0 && a.writer != me && !device_ordered(a.writer, a.write_epoch)) {
    device_race("writes", name, k, a.writer);
  }
  if (a.reader == -2 || (a.reader >= 0 && a.reader != me && !device_ordered(a.reader, a.read_epoch))) {
    device_race("writes", name, k, a.reader);
  }
  a.writer = me;
  a.write_epoch = d.barrier_epoch;
  a.reader = -1;
}

// Copy and compound assignment of an element reference, through its tracked read (operator T)
// and write (operator=(T)).
#define MSL_SIM_REF_ASSIGNMENTS(Ref)                 \
  Ref& operator=(const Ref& other) {                 \
    return *this = static_cast<T>(other);            \
  }                                                  \
  Ref& operator+=(T v) {                             \
    return *this = static_cast<T>(*this) + v;        \
  }                                                  \
  Ref& operator-=(T v) {                             \
    return *this = static_cast<T>(*this) - v;        \
  }                                                  \
  Ref& operator*=(T v) {                             \
    return *this = static_cast<T>(*this) * v;        \
  }

// A writable device element: reads and writes are tracked.
template <typename T>
struct d_ref {
  T* p;
  const char* name;
  int64_t k;
  operator T() const {
    device_read(p, name, k);
    return *p;
  }
  d_ref& operator=(T v) {
    device_write(p, name, k);
    *p = v;
    return *this;
  }
  MSL_SIM_REF_ASSIGNMENTS(d_ref)
};

// A device/constant pointer: base and length of the bound buffer, and a checked offset.
// Reads through const pointers return values, writable elements are d_refs; both are tracked.
template <typename T>
struct dptr {
  T* base = nullptr;
  int64_t length = 0; // elements of T in the buffer
  int64_t offset = 0;
  const char* name = "";

  dptr() = default;
  dptr(T* b, int64_t len, int64_t off, const char* n) : base(b), length(len), offset(off), name(n) {}
  // An MSL pointer cast, e.g. (device const float4*)p: the same bytes as other elements, from
  // an element aligned to the new element size (allocations are).
  template <typename U, typename = std::enable_if_t<!std::is_same_v<std::remove_const_t<U>, std::remove_const_t<T>>>>
  explicit dptr(const dptr<U>& o) : base(reinterpret_cast<T*>(o.base)), name(o.name) {
    int64_t byte_offset = o.offset * static_cast<int64_t>(sizeof(U));
    if (byte_offset % static_cast<int64_t>(sizeof(T)) != 0) {
      std::ostringstream s;
      s << "misaligned pointer cast of buffer '" << o.name << "': byte " << byte_offset
        << " is not a multiple of the " << sizeof(T) << "-byte element";
      fail(s.str());
    }
    length = o.length * static_cast<int64_t>(sizeof(U)) / static_cast<int64_t>(sizeof(T));
    offset = byte_offset / static_cast<int64_t>(sizeof(T));
  }

  T& at(int64_t i) const {
    int64_t k = offset + i;
    if (k < 0 || k >= length) {
      std::ostringstream s;
      s << "out-of-bounds " << (std::is_const_v<T> ? "read" : "access") << " of buffer '"
        << name << "' at element " << k << " (buffer holds " << length << ")";
      fail(s.str());
    }
    return base[k];
  }
  auto operator[](int64_t i) const {
    T& element = at(i);
    if constexpr (std::is_const_v<T>) {
      device_read(&element, name, offset + i);
      return element;
    } else {
      return d_ref<T>{&element, name, offset + i};
    }
  }
  auto operator*() const {
    return (*this)[0];
  }
  dptr operator+(int64_t n) const {
    dptr p = *this;
    p.offset += n;
    return p;
  }
  dptr operator-(int64_t n) const {
    return *this + (-n);
  }
  dptr& operator+=(int64_t n) {
    offset += n;
    return *this;
  }
  dptr& operator-=(int64_t n) {
    offset -= n;
    return *this;
  }
  dptr& operator++() {
    ++offset;
    return *this;
  }
  operator dptr<const T>() const {
    return {base, length, offset, name};
  }
};

// ---------------------------------------------------------------- threadgroup memory
// Per element: the last writer and the readers since, with the barrier epochs they saw.
struct Shadow {
  int writer = -1;
  uint64_t write_epoch = 0, write_simd_epoch = 0;
  int reader = -1; // -2: several threads
  uint64_t read_epoch = 0, read_simd_epoch = 0;
};

inline bool ordered(int other, uint64_t epoch, uint64_t simd_epoch) {
  // Another thread's access is ordered before ours by a threadgroup barrier since, or by a
  // simdgroup barrier when both threads share a simdgroup.
  Dispatch& d = *current_dispatch();
  Lane& me = *d.current;
  if (epoch != d.barrier_epoch) {
    return true;
  }
  uint simd = me.index / 32;
  return static_cast<uint>(other) / 32 == simd && simd_epoch != d.simd_barrier_epoch[simd];
}

template <typename T>
struct tg_ref {
  T* p;
  Shadow* s;
  const char* name;
  int64_t i;

  [[noreturn]] void race(const char* what, int other) const {
    std::ostringstream m;
    m << "threadgroup memory race: thread " << lane().index << " " << what << " " << name
      << "[" << i << "] " << (what[0] == 'r' ? "written" : "accessed") << " by thread "
      << other << " with no barrier in between";
    fail(m.str());
  }
  operator T() const {
    Dispatch& d = *current_dispatch();
    int me = static_cast<int>(lane().index);
    if (s->writer == -1) {
      std::ostringstream m;
      m << "thread " << me << " reads " << name << "[" << i
        << "] before any thread of the threadgroup wrote it (a missing write or barrier)";
      fail(m.str());
    }
    if (s->writer != me && !ordered(s->writer, s->write_epoch, s->write_simd_epoch)) {
      race("reads", s->writer);
    }
    s->reader = (s->reader == -1 || s->read_epoch != d.barrier_epoch || s->reader == me) ? me : -2;
    s->read_epoch = d.barrier_epoch;
    s->read_simd_epoch = d.simd_barrier_epoch[me / 32];
    return *p;
  }
  tg_ref& operator=(T v) {
    Dispatch& d = *current_dispatch();
    int me = static_cast<int>(lane().index);
    if (s->writer >= 0 && s->writer != me && !ordered(s->writer, s->write_epoch, s->write_simd_epoch)) {
      race("writes", s->writer);
    }
    if (s->reader == -2 && s->read_epoch == d.barrier_epoch) {
      race("writes", -2);
    }
    if (s->reader >= 0 && s->reader != me && !ordered(s->reader, s->read_epoch, s->read_simd_epoch)) {
      race("writes", s->reader);
    }
    s->writer = me;
    s->write_epoch = d.barrier_epoch;
    s->write_simd_epoch = d.simd_barrier_epoch[me / 32];
    *p = v;
    return *this;
  }
  MSL_SIM_REF_ASSIGNMENTS(tg_ref)
};
#undef MSL_SIM_REF_ASSIGNMENTS

template <typename T>
struct tgptr {
  T* base = nullptr;
  Shadow* shadow = nullptr;
  int64_t length = 0;
  int64_t offset = 0;
  const char* name = "";

  tg_ref<T> operator[](int64_t i) const {
    int64_t k = offset + i;
    if (k < 0 || k >= length) {
      std::ostringstream s;
      s << "out-of-bounds access of threadgroup array '" << name << "' at element " << k
        << " (holds " << length << ")";
      fail(s.str());
    }
    return {base + k, shadow + k, name, k};
  }
  tg_ref<T> operator*() const {
    return (*this)[0];
  }
  tgptr operator+(int64_t n) const {
    tgptr p = *this;
    p.offset += n;
    return p;
  }
  tgptr& operator+=(int64_t n) {
    offset += n;
    return *this;
  }
};

// `threadgroup T name[N];` : storage shared by the threads of one threadgroup, poisoned
// (all bits set: NaN for floats) when a new threadgroup starts. Site keeps declarations apart.
template <typename T, size_t N, int Site>
tgptr<T> tg_array(const char* name) {
  static std::vector<unsigned char> storage(sizeof(T) * N);
  static std::vector<Shadow> shadow(N);
  static uint64_t epoch = ~uint64_t(0);
  Dispatch& d = *current_dispatch();
  if (epoch != d.group_epoch) {
    epoch = d.group_epoch;
    std::memset(storage.data(), 0xff, storage.size());
    std::fill(shadow.begin(), shadow.end(), Shadow{});
    d.threadgroup_bytes += sizeof(T) * N;
    if (d.threadgroup_bytes > 32768) {
      fail("threadgroup memory exceeds 32 KiB");
    }
  }
  return {reinterpret_cast<T*>(storage.data()), shadow.data(), static_cast<int64_t>(N), 0, name};
}

} // namespace msl_sim

#include "scheduler.h"

// ---------------------------------------------------------------- metal:: library
namespace metal {

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };

inline void threadgroup_barrier(mem_flags) {
  msl_sim::yield(msl_sim::LaneState::at_barrier);
}

// Math on float; half and bfloat arguments compute in float and round back (as in MSL's
// half functions, up to their ulp bounds).
#define MSL_SIM_UNARY(name, expr)                      \
  inline float name(float x) {                         \
    return expr;                                       \
  }                                                    \
  inline half name(half x) {                           \
    return static_cast<half>(name(static_cast<float>(x))); \
  }
MSL_SIM_UNARY(abs, std::fabs(x))
MSL_SIM_UNARY(ceil, std::ceil(x))
MSL_SIM_UNARY(cos, std::cos(x))
MSL_SIM_UNARY(exp, std::exp(x))
MSL_SIM_UNARY(exp2, std::exp2(x))
MSL_SIM_UNARY(floor, std::floor(x))
MSL_SIM_UNARY(log, std::log(x))
MSL_SIM_UNARY(log2, std::log2(x))
MSL_SIM_UNARY(round, std::round(x))
MSL_SIM_UNARY(rsqrt, 1.0f / std::sqrt(x))
MSL_SIM_UNARY(sin, std::sin(x))
MSL_SIM_UNARY(sqrt, std::sqrt(x))
MSL_SIM_UNARY(tanh, std::tanh(x))
#undef MSL_SIM_UNARY
inline int abs(int x) {
  return x < 0 ? -x : x;
}
inline bool isnan(float x) {
  return std::isnan(x);
}
inline bool isinf(float x) {
  return std::isinf(x);
}
inline bool isfinite(float x) {
  return std::isfinite(x);
}
inline float fma(float a, float b, float c) {
  return std::fma(a, b, c);
}
inline float pow(float a, float b) {
  return std::pow(a, b);
}
template <typename T>
inline T max(T a, T b) {
  return a < b ? b : a;
}
template <typename T>
inline T min(T a, T b) {
  return b < a ? b : a;
}
inline float fmax(float a, float b) {
  return std::fmax(a, b);
}
inline float fmin(float a, float b) {
  return std::fmin(a, b);
}
template <typename T>
inline T clamp(T x, T lo, T hi) {
  return min(max(x, lo), hi);
}
template <typename T>
inline T select(T a, T b, bool c) {
  return c ? b : a;
}
template <typename T, int N>
inline T dot(const vec<T, N>& a, const vec<T, N>& b) {
  T r = T(0);
  for (int i = 0; i < N; ++i) {
    r = static_cast<T>(r + a.elems[i] * b.elems[i]);
  }
  return r;
}
// Bit reinterpretation (MSL as_type<T>).
template <typename T, typename U>
inline T as_type(const U& u) {
  static_assert(sizeof(T) == sizeof(U), "as_type needs equal sizes");
  T t;
  std::memcpy(&t, &u, sizeof(T));
  return t;
}
template <typename T>
using numeric_limits = std::numeric_limits<T>;
namespace precise {
using metal::cos;
using metal::exp;
using metal::log;
using metal::rsqrt;
using metal::sin;
using metal::sqrt;
} // namespace precise
namespace fast {
using metal::exp;
using metal::exp2;
using metal::log;
using metal::rsqrt;
using metal::sqrt;
using metal::tanh;
} // namespace fast

// ---------------------------------------------------------------- simd collectives
namespace detail {

template <typename T>
T collective(msl_sim::Resolver resolver, T value, int64_t arg, const std::source_location& loc) {
  static_assert(sizeof(T) <= 16, "simd operand too large");
  msl_sim::Lane& l = msl_sim::lane();
  l.site_file = loc.file_name();
  l.site_line = loc.line();
  l.site_column = loc.column();
  l.resolver = resolver;
  l.arg = arg;
  std::memcpy(l.operand, &value, sizeof(T));
  msl_sim::yield(msl_sim::LaneState::at_collective);
  T out;
  std::memcpy(&out, l.result, sizeof(T));
  return out;
}

template <typename T>
T operand(msl_sim::Lane* l) {
  T v;
  std::memcpy(&v, l->operand, sizeof(T));
  return v;
}
template <typename T>
void give(msl_sim::Lane* l, T v) {
  std::memcpy(l->result, &v, sizeof(T));
}

// Reductions combine the active lanes pairwise (a tree, like the hardware), in T.
template <typename T, typename Op>
void reduce(msl_sim::Lane** lanes, int width, Op op) {
  std::vector<T> vals;
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      vals.push_back(operand<T>(lanes[i]));
    }
  }
  while (vals.size() > 1) {
    std::vector<T> next;
    for (size_t i = 0; i + 1 < vals.size(); i += 2) {
      next.push_back(op(vals[i], vals[i + 1]));
    }
    if (vals.size() % 2) {
      next.push_back(vals.back());
    }
    vals.swap(next);
  }
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      give<T>(lanes[i], vals[0]);
    }
  }
}

// Shuffles: lane i receives lane source(i); outside the simdgroup it keeps its own value.
template <typename T, typename Source>
void shuffle(msl_sim::Lane** lanes, int width, Source source) {
  std::vector<T> vals(width);
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      vals[i] = operand<T>(lanes[i]);
    }
  }
  for (int i = 0; i < width; ++i) {
    if (!lanes[i]) {
      continue;
    }
    int64_t src = source(i, lanes[i]->arg);
    if (src < 0 || src >= width) {
      give<T>(lanes[i], vals[i]);
    } else if (!lanes[src]) {
      msl_sim::current_dispatch()->current = lanes[i];
      msl_sim::fail("simd shuffle reads inactive lane " + std::to_string(src));
    } else {
      give<T>(lanes[i], vals[src]);
    }
  }
}

template <typename T>
void sum(msl_sim::Lane** l, int w) {
  reduce<T>(l, w, [](T a, T b) { return static_cast<T>(a + b); });
}
template <typename T>
void prod(msl_sim::Lane** l, int w) {
  reduce<T>(l, w, [](T a, T b) { return static_cast<T>(a * b); });
}
template <typename T>
void max(msl_sim::Lane** l, int w) {
  reduce<T>(l, w, [](T a, T b) { return a < b ? b : a; });
}
template <typename T>
void min(msl_sim::Lane** l, int w) {
  reduce<T>(l, w, [](T a, T b) { return b < a ? b : a; });
}
template <typename T>
void bcast(msl_sim::Lane** l, int w) {
  shuffle<T>(l, w, [](int, int64_t a) { return a; });
}
template <typename T>
void down(msl_sim::Lane** l, int w) {
  shuffle<T>(l, w, [](int i, int64_t a) { return i + a; });
}
template <typename T>
void up(msl_sim::Lane** l, int w) {
  shuffle<T>(l, w, [](int i, int64_t a) { return i - a; });
}
template <typename T>
void xor_(msl_sim::Lane** l, int w) {
  shuffle<T>(l, w, [](int i, int64_t a) { return static_cast<int64_t>(i ^ a); });
}
// Prefix sums run over the active lanes in lane order.
template <typename T, bool Inclusive>
void prefix(msl_sim::Lane** lanes, int width) {
  T running = T(0);
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      T v = operand<T>(lanes[i]);
      T inclusive = static_cast<T>(running + v);
      give<T>(lanes[i], Inclusive ? inclusive : running);
      running = inclusive;
    }
  }
}
template <bool All>
void vote(msl_sim::Lane** lanes, int width) {
  bool result = All;
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      result = All ? (result && operand<bool>(lanes[i])) : (result || operand<bool>(lanes[i]));
    }
  }
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      give<bool>(lanes[i], result);
    }
  }
}
inline void simd_barrier(msl_sim::Lane** lanes, int width) {
  msl_sim::Dispatch& d = *msl_sim::current_dispatch();
  for (int i = 0; i < width; ++i) {
    if (lanes[i]) {
      d.simd_barrier_epoch[lanes[i]->index / 32]++;
      return;
    }
  }
}

} // namespace detail

#define MSL_SIM_LOC const std::source_location& loc = std::source_location::current()
// simd_<op>(value) and simd_<op>(value, lane argument), resolved across the active lanes.
#define MSL_SIM_COLLECTIVE(name, resolver)              \
  template <typename T>                                 \
  T name(T v, MSL_SIM_LOC) {                            \
    return detail::collective(resolver, v, 0, loc);     \
  }
#define MSL_SIM_LANE_COLLECTIVE(name, resolver)           \
  template <typename T>                                   \
  T name(T v, ushort arg, MSL_SIM_LOC) {                  \
    return detail::collective(resolver, v, arg, loc);     \
  }
MSL_SIM_COLLECTIVE(simd_sum, detail::sum<T>)
MSL_SIM_COLLECTIVE(simd_product, detail::prod<T>)
MSL_SIM_COLLECTIVE(simd_max, detail::max<T>)
MSL_SIM_COLLECTIVE(simd_min, detail::min<T>)
MSL_SIM_LANE_COLLECTIVE(simd_broadcast, detail::bcast<T>)
MSL_SIM_LANE_COLLECTIVE(simd_shuffle, detail::bcast<T>)
MSL_SIM_LANE_COLLECTIVE(simd_shuffle_down, detail::down<T>)
MSL_SIM_LANE_COLLECTIVE(simd_shuffle_up, detail::up<T>)
MSL_SIM_LANE_COLLECTIVE(simd_shuffle_xor, detail::xor_<T>)
MSL_SIM_COLLECTIVE(simd_prefix_inclusive_sum, (detail::prefix<T, true>))
MSL_SIM_COLLECTIVE(simd_prefix_exclusive_sum, (detail::prefix<T, false>))
#undef MSL_SIM_LANE_COLLECTIVE
#undef MSL_SIM_COLLECTIVE
inline bool simd_all(bool v, MSL_SIM_LOC) {
  return detail::collective(detail::vote<true>, v, 0, loc);
}
inline bool simd_any(bool v, MSL_SIM_LOC) {
  return detail::collective(detail::vote<false>, v, 0, loc);
}
inline void simdgroup_barrier(mem_flags, MSL_SIM_LOC) {
  detail::collective(detail::simd_barrier, 0, 0, loc);
}
#undef MSL_SIM_LOC

} // namespace metal

// Address spaces: pointers were rewritten by the driver; what is left (references, program
// scope constants) needs no qualifier on the CPU.
#define device
#define constant
#define thread
#define threadgroup
#define METAL_FUNC inline

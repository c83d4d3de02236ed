// Executes a dispatch: threadgroups one after another, each thread of a threadgroup a fiber
// that runs until it reaches a barrier, a simd collective or its end. When every fiber is
// blocked, collectives are resolved per simdgroup and call site (lanes elsewhere are
// inactive); once only barrier waiters remain, the barrier opens.
#pragma once

namespace msl_sim {

constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr uint kSimdWidth = 32;
constexpr uint kMaxThreadsPerGroup = 1024;

inline void fiber_main() {
  Dispatch& d = *current_dispatch();
  Lane& l = *d.current;
  try {
    d.thread_fn(d, l);
  } catch (const std::exception& e) {
    if (d.fault.empty()) {
      d.fault = e.what();
    }
  }
  l.state = LaneState::done; // uc_link returns to the scheduler
}

inline std::map<std::string, ThreadFn>& kernels() {
  static std::map<std::string, ThreadFn> table;
  return table;
}

struct Register {
  Register(const char* name, ThreadFn fn) {
    kernels()[name] = fn;
  }
};

enum class Attr {
  thread_position_in_grid,
  threadgroup_position_in_grid,
  thread_position_in_threadgroup,
  threads_per_threadgroup,
  threadgroups_per_grid,
  threads_per_grid,
  thread_index_in_threadgroup,
  simdgroup_index_in_threadgroup,
  thread_index_in_simdgroup,
  simdgroups_per_threadgroup,
  threads_per_simdgroup,
};

inline uint3 position(const Dispatch& d, const Lane& l, Attr a) {
  uint n = d.group.x * d.group.y * d.group.z;
  switch (a) {
    case Attr::thread_position_in_grid:
      return l.pos_in_grid;
    case Attr::threadgroup_position_in_grid:
      return l.group_pos;
    case Attr::thread_position_in_threadgroup:
      return l.pos_in_group;
    case Attr::threads_per_threadgroup:
      return d.group;
    case Attr::threadgroups_per_grid:
      return d.grid;
    case Attr::threads_per_grid:
      return {d.grid.x * d.group.x, d.grid.y * d.group.y, d.grid.z * d.group.z};
    case Attr::thread_index_in_threadgroup:
      return {l.index, 0, 0};
    case Attr::simdgroup_index_in_threadgroup:
      return {l.index / kSimdWidth, 0, 0};
    case Attr::thread_index_in_simdgroup:
      return {l.index % kSimdWidth, 0, 0};
    case Attr::simdgroups_per_threadgroup:
      return {(n + kSimdWidth - 1) / kSimdWidth, 0, 0};
    case Attr::threads_per_simdgroup:
      return {kSimdWidth, 0, 0};
  }
  return {};
}

// A position attribute as the parameter type the kernel declares (uint, ushort, uint2, uint3).
template <typename P>
P as_param(uint3 v) {
  using D = std::decay_t<P>;
  if constexpr (std::is_same_v<D, uint3>) {
    return v;
  } else if constexpr (std::is_same_v<D, uint2>) {
    return {v.x, v.y};
  } else {
    return static_cast<D>(v.x);
  }
}

template <typename F, int I>
struct param;
template <typename R, typename... A, int I>
struct param<R(A...), I> {
  using type = std::tuple_element_t<I, std::tuple<A...>>;
};
template <typename F, int I>
using param_t = typename param<F, I>::type;

// [[buffer(index)]] as the parameter type: a checked pointer over the whole bound buffer, or
// a reference to set_bytes data whose size must match the type the kernel reads.
template <typename P>
P bind_buffer(Dispatch& d, int index, const char* param_name) {
  if (index >= static_cast<int>(d.buffers.size()) || !d.buffers[index].data) {
    fail("buffer(" + std::to_string(index) + ") '" + param_name + "' is not bound");
  }
  Buffer& b = d.buffers[index];
  if constexpr (std::is_reference_v<P>) {
    using T = std::remove_reference_t<P>;
    if (b.nbytes != static_cast<int64_t>(sizeof(T))) {
      fail("buffer(" + std::to_string(index) + ") '" + param_name + "': " +
           std::to_string(b.nbytes) + " bytes bound, the kernel reads " +
           std::to_string(sizeof(T)));
    }
    return *reinterpret_cast<T*>(b.data);
  } else {
    using T = std::remove_reference_t<decltype(*std::declval<P>().base)>;
    P p;
    p.base = reinterpret_cast<T*>(static_cast<unsigned char*>(b.data) - b.offset);
    p.length = (b.nbytes + b.offset) / static_cast<int64_t>(sizeof(T));
    p.offset = b.offset / static_cast<int64_t>(sizeof(T));
    p.name = b.name;
    return p;
  }
}

inline void resolve_collectives(Dispatch& d) {
  uint n = static_cast<uint>(d.lanes.size());
  for (uint first = 0; first < n; first += kSimdWidth) {
    uint width = std::min(kSimdWidth, n - first);
    std::vector<bool> handled(width, false);
    for (uint i = 0; i < width; ++i) {
      Lane& lead = d.lanes[first + i];
      if (handled[i] || lead.state != LaneState::at_collective) {
        continue;
      }
      Lane* present[kSimdWidth] = {};
      for (uint j = i; j < width; ++j) {
        Lane& o = d.lanes[first + j];
        if (o.state == LaneState::at_collective && o.resolver == lead.resolver &&
            o.site_line == lead.site_line && o.site_column == lead.site_column &&
            std::strcmp(o.site_file, lead.site_file) == 0) {
          present[j] = &o;
          handled[j] = true;
        }
      }
      d.current = &lead;
      lead.resolver(present, static_cast<int>(width));
      for (uint j = 0; j < width; ++j) {
        if (present[j]) {
          present[j]->state = LaneState::ready;
        }
      }
    }
  }
}

// Runs one threadgroup; false when it faulted (d.fault says why).
inline bool run_group(Dispatch& d, uint3 group_pos) {
  d.group_epoch++;
  d.barrier_epoch++;
  d.threadgroup_bytes = 0;
  uint gx = d.group.x, gy = d.group.y;
  for (uint i = 0; i < d.lanes.size(); ++i) {
    Lane& l = d.lanes[i];
    l.index = i;
    l.pos_in_group = {i % gx, (i / gx) % gy, i / (gx * gy)};
    l.group_pos = group_pos;
    l.pos_in_grid = {group_pos.x * gx + l.pos_in_group.x, group_pos.y * gy + l.pos_in_group.y,
                     group_pos.z * d.group.z + l.pos_in_group.z};
    l.state = LaneState::ready;
    getcontext(&l.ctx);
    l.ctx.uc_stack.ss_sp = l.stack;
    l.ctx.uc_stack.ss_size = kStackBytes;
    l.ctx.uc_link = &d.scheduler;
    makecontext(&l.ctx, fiber_main, 0);
  }
  for (;;) {
    for (Lane& l : d.lanes) {
      if (l.state == LaneState::ready) {
        d.current = &l;
        swapcontext(&d.scheduler, &l.ctx);
        d.current = nullptr;
        if (!d.fault.empty()) {
          return false;
        }
      }
    }
    size_t done = 0, at_barrier = 0, at_collective = 0;
    for (Lane& l : d.lanes) {
      done += l.state == LaneState::done;
      at_barrier += l.state == LaneState::at_barrier;
      at_collective += l.state == LaneState::at_collective;
    }
    if (done == d.lanes.size()) {
      return true;
    }
    if (at_collective) {
      try {
        resolve_collectives(d);
      } catch (const std::exception& e) {
        d.fault = e.what();
        return false;
      }
      continue;
    }
    if (done) {
      d.fault = "threadgroup_barrier reached by " + std::to_string(at_barrier) + " threads while " +
                std::to_string(done) + " threads of threadgroup (" + std::to_string(group_pos.x) +
                "," + std::to_string(group_pos.y) + "," + std::to_string(group_pos.z) +
                ") had returned";
      return false;
    }
    d.barrier_epoch++;
    for (Lane& l : d.lanes) {
      l.state = LaneState::ready;
    }
  }
}

} // namespace msl_sim

// The C entry points the Python driver calls through ctypes.
struct MslSimBuffer {
  void* data; // start of the binding (what set_*_array binds, offset included)
  int64_t nbytes; // bytes from data to the end of the underlying allocation
  int64_t offset; // bytes of the allocation before data (reachable with negative indices)
  const char* name;
};

extern "C" __attribute__((visibility("default"))) const char* msl_sim_kernel_names() {
  static std::string names;
  names.clear();
  for (auto& [name, fn] : msl_sim::kernels()) {
    names += name + "\n";
  }
  return names.c_str();
}

// 0: ran; 1: fault (message in err); 2: no such kernel.
extern "C" __attribute__((visibility("default"))) int msl_sim_dispatch(const char* kernel, const MslSimBuffer* buffers, int n_buffers,
                                const uint32_t* grid, const uint32_t* group, char* err,
                                int64_t err_cap) {
  using namespace msl_sim;
  auto report = [&](const std::string& msg, int code) {
    std::snprintf(err, static_cast<size_t>(err_cap), "%s", msg.c_str());
    return code;
  };
  auto it = kernels().find(kernel);
  if (it == kernels().end()) {
    return report(std::string("no kernel named ") + kernel, 2);
  }
  Dispatch d;
  d.thread_fn = it->second;
  d.grid = {grid[0], grid[1], grid[2]};
  d.group = {group[0], group[1], group[2]};
  for (int i = 0; i < n_buffers; ++i) {
    d.buffers.push_back({buffers[i].data, buffers[i].nbytes, buffers[i].name});
    d.buffers.back().offset = buffers[i].offset;
  }
  uint64_t threads = uint64_t(d.group.x) * d.group.y * d.group.z;
  if (threads == 0 || threads > kMaxThreadsPerGroup) {
    return report("threadgroup of " + std::to_string(threads) + " threads (1 to " +
                      std::to_string(kMaxThreadsPerGroup) + " allowed)", 1);
  }
  d.lanes.resize(threads);
  d.simd_barrier_epoch.assign((threads + kSimdWidth - 1) / kSimdWidth, 0);
  std::vector<void*> maps;
  for (Lane& l : d.lanes) {
    void* mem = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    mprotect(mem, kGuardBytes, PROT_NONE); // a stack overflow faults instead of corrupting
    maps.push_back(mem);
    l.stack = static_cast<char*>(mem) + kGuardBytes;
  }
  current_dispatch() = &d;
  bool ok = true;
  for (uint z = 0; ok && z < d.grid.z; ++z) {
    for (uint y = 0; ok && y < d.grid.y; ++y) {
      for (uint x = 0; ok && x < d.grid.x; ++x) {
        ok = run_group(d, {x, y, z});
      }
    }
  }
  current_dispatch() = nullptr;
  for (void* mem : maps) {
    munmap(mem, kStackBytes + kGuardBytes);
  }
  return ok ? 0 : report(d.fault, 1);
}

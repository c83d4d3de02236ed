// Independent rows split over the worker pool (cpu/thread_pool.h). Each task runs the same
// per-row code on a disjoint row range, so outputs are bitwise the same for any thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/thread_pool.h"

namespace mlxr::cpu {

// Bytes (read + written) below which a task is not worth waking a worker for: a wake-up and
// join cost tens of microseconds, 512 KiB takes ~50 us at 10 GB/s. Decode-sized inputs
// (a few rows) therefore run on the calling thread alone.
constexpr int64_t kMinTaskBytes = 512 << 10;
// Tasks per thread: a few more than one, so a core slowed by other processes takes fewer.
constexpr int64_t kTasksPerThread = 4;

// Calls body(begin, end) over consecutive row ranges covering [0, n_rows), in parallel when
// the rows move enough bytes to pay for it.
template <typename Body>
void parallel_rows(int64_t n_rows, int64_t bytes_per_row, const Body& body) {
  int64_t threads = num_threads();
  int64_t by_size = n_rows * bytes_per_row / kMinTaskBytes;
  int64_t n_tasks = std::min({threads * kTasksPerThread, by_size, n_rows});
  if (threads <= 1 || n_tasks <= 1) {
    body(int64_t(0), n_rows);
    return;
  }
  parallel_for(static_cast<int>(n_tasks), [&](int t) {
    body(n_rows * t / n_tasks, n_rows * (t + 1) / n_tasks);
  });
}

} // namespace mlxr::cpu

#include "kernel_log.h"

#include <mutex>

namespace mlxr {

namespace {
std::mutex& log_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, int64_t>& counts() {
  static std::map<std::string, int64_t> c;
  return c;
}
} // namespace

void record_kernel(const std::string& device, const std::string& name) {
  std::lock_guard<std::mutex> lock(log_mutex());
  counts()[device + ":" + name] += 1;
}

std::map<std::string, int64_t> kernel_counts() {
  std::lock_guard<std::mutex> lock(log_mutex());
  return counts();
}

void reset_kernel_counts() {
  std::lock_guard<std::mutex> lock(log_mutex());
  counts().clear();
}

} // namespace mlxr

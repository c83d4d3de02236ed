#include "kernel_log.h"

#include <algorithm>
#include <functional>
#include <mutex>

namespace mlxr {

namespace {
std::mutex& log_mutex() {
  static std::mutex m;
  return m;
}
// "device:name" -> count; std::less<> finds a string_view key without building a string.
std::map<std::string, int64_t, std::less<>>& counts() {
  static std::map<std::string, int64_t, std::less<>> c;
  return c;
}
} // namespace

void record_kernel(std::string_view device, std::initializer_list<std::string_view> name) {
  char buffer[128];
  size_t size = 0;
  auto append = [&](std::string_view piece) {
    size_t n = std::min(piece.size(), sizeof(buffer) - size);
    piece.copy(buffer + size, n);
    size += n;
  };
  append(device);
  append(":");
  for (std::string_view piece : name) {
    append(piece);
  }
  std::string_view key(buffer, size);
  std::lock_guard<std::mutex> lock(log_mutex());
  auto& c = counts();
  auto it = c.find(key);
  if (it == c.end()) {
    it = c.emplace(std::string(key), 0).first;
  }
  it->second += 1;
}

std::map<std::string, int64_t> kernel_counts() {
  std::lock_guard<std::mutex> lock(log_mutex());
  return {counts().begin(), counts().end()};
}

void reset_kernel_counts() {
  std::lock_guard<std::mutex> lock(log_mutex());
  counts().clear();
}

} // namespace mlxr

#include "kernel_log.h"

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
  // The key in a stack buffer; a name too long for it (none is today) in a string.
  char buffer[128];
  std::string long_key;
  size_t size = device.size() + 1;
  for (std::string_view piece : name) {
    size += piece.size();
  }
  char* at = size <= sizeof(buffer) ? buffer : (long_key.resize(size), long_key.data());
  std::string_view key(at, size);
  at += device.copy(at, device.size());
  *at++ = ':';
  for (std::string_view piece : name) {
    at += piece.copy(at, piece.size());
  }
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

// A Metal launch plan: kernel name, grid and the exact sequence of set_input_array /
// set_output_array / set_bytes calls with their buffer indices. Pure C++ (no MLX, no Metal):
// the Metal host code (csrc/metal/encode.cpp) and the CPU simulator (conformance/metal_sim)
// both execute plans, so they cannot disagree on a buffer index.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace mlxr::metal_launch {

enum class ArgKind { input, output, bytes };

struct Arg {
  ArgKind kind;
  int index; // [[buffer(index)]] in the kernel signature
  int array; // position in the primitive's inputs / outputs (input, output)
  std::string name;
  std::vector<uint8_t> bytes; // set_bytes payload (bytes)
};

struct Plan {
  std::string kernel;
  std::array<size_t, 3> grid{0, 1, 1}; // in threadgroups (dispatch_threadgroups)
  std::array<size_t, 3> group{1, 1, 1}; // threads per threadgroup

  std::vector<Arg> args; // in set_* order

  void input(int index, int array, std::string name) {
    args.push_back({ArgKind::input, index, array, std::move(name), {}});
  }
  void output(int index, int array, std::string name) {
    args.push_back({ArgKind::output, index, array, std::move(name), {}});
  }
  template <typename T>
  void bytes(int index, std::string name, T value) {
    std::vector<uint8_t> payload(sizeof(T));
    std::memcpy(payload.data(), &value, sizeof(T));
    args.push_back({ArgKind::bytes, index, -1, std::move(name), std::move(payload)});
  }
  size_t threads_per_group() const {
    return group[0] * group[1] * group[2];
  }
};

// Device facts a plan may depend on.
struct DeviceLimits {
  size_t max_threads_per_group = 1024;
  size_t simd_size = 32;
};

// The plan as JSON, for the simulator and for debugging.
inline std::string to_json(const Plan& p) {
  static const char* kinds[] = {"input", "output", "bytes"};
  std::ostringstream s;
  s << "{\"kernel\":\"" << p.kernel << "\",\"grid\":[" << p.grid[0] << "," << p.grid[1] << ","
    << p.grid[2] << "],\"group\":[" << p.group[0] << "," << p.group[1] << "," << p.group[2]
    << "],\"args\":[";
  for (size_t i = 0; i < p.args.size(); ++i) {
    const Arg& a = p.args[i];
    s << (i ? "," : "") << "{\"kind\":\"" << kinds[static_cast<int>(a.kind)]
      << "\",\"index\":" << a.index << ",\"array\":" << a.array << ",\"name\":\"" << a.name
      << "\",\"bytes\":\"";
    static const char* hex = "0123456789abcdef";
    for (uint8_t b : a.bytes) {
      s << hex[b >> 4] << hex[b & 15];
    }
    s << "\"}";
  }
  s << "]}";
  return s.str();
}

} // namespace mlxr::metal_launch

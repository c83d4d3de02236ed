// Stand-in for <fmt/format.h>, which MLX's CUDA headers include for error messages: the mlx-cuda
// wheel ships no fmt, and the GPU machine's system fmt (v9) does not compile under nvcc.
// Only fmt::format with sequential "{}" fields is provided.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace fmt {

namespace detail {
inline void append(std::ostringstream& os, std::string_view& rest) {
  os << rest;
  rest = {};
}
template <typename T, typename... Ts>
void append(std::ostringstream& os, std::string_view& rest, const T& first, const Ts&... more) {
  size_t field = rest.find("{}");
  if (field == std::string_view::npos) {
    return append(os, rest);
  }
  os << rest.substr(0, field) << first;
  rest.remove_prefix(field + 2);
  append(os, rest, more...);
}
} // namespace detail

template <typename... Ts>
std::string format(std::string_view pattern, const Ts&... args) {
  std::ostringstream os;
  detail::append(os, pattern, args...);
  return os.str();
}

} // namespace fmt

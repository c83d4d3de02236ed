// Bridges the Python reference (reference/<op>.py) into a C++ Fallback, so the single source
// of truth also defines every fused primitive's default vjp/jvp/vmap.
#pragma once

#include <nanobind/nanobind.h>

#include <utility>
#include <vector>

#include "fused_primitive.h"
#include "mlx/utils.h"

namespace mlxr {

namespace nb = nanobind;

// References are module-level functions: keep each alive for the process, so primitives can
// hold a raw pointer and never touch Python reference counts from MLX's worker threads.
PyObject* keep_reference(nb::handle fn);

// Arrays from whatever the reference returned: one array, or a tuple/list of them.
std::vector<mx::array> to_arrays(const nb::object& result);

// An optional input of a Fallback: in[index] when present, else None (the GIL must be held).
inline nb::object array_or_none(const std::vector<mx::array>& in, bool present, size_t index) {
  return present ? nb::cast(in[index]) : nb::none();
}

// Calls `fn(*args)` on `stream` with the GIL held.
template <typename... Args>
std::vector<mx::array> call_reference(PyObject* fn, mx::Stream stream, Args&&... args) {
  nb::gil_scoped_acquire gil;
  mx::StreamContext on_stream(stream);
  return to_arrays(nb::handle(fn)(std::forward<Args>(args)...));
}

} // namespace mlxr

#include "bindings/hot_path.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "mlx/device.h"

namespace mlxr::hot {

namespace {

struct KernelDtypes {
  std::vector<mx::Dtype> cpu, gpu;
};

std::mutex table_mutex;
std::unordered_map<std::string, KernelDtypes> table;

} // namespace

void set_kernel_dtypes(const std::string& op, bool gpu, const std::vector<mx::Dtype>& dtypes) {
  std::lock_guard lock(table_mutex);
  (gpu ? table[op].gpu : table[op].cpu) = dtypes;
}

std::optional<mx::Stream> kernel_stream(const std::string& op, mx::Dtype dtype) {
  const mx::Device& device = mx::default_device();
  {
    std::lock_guard lock(table_mutex);
    auto it = table.find(op);
    if (it == table.end()) {
      return std::nullopt;
    }
    const auto& dtypes = device.type == mx::Device::cpu ? it->second.cpu : it->second.gpu;
    if (std::find(dtypes.begin(), dtypes.end(), dtype) == dtypes.end()) {
      return std::nullopt;
    }
  }
  return mx::default_stream(device);
}

const mx::array* array(nb::handle h, int min_ndim) {
  if (!nb::isinstance<mx::array>(h)) {
    return nullptr;
  }
  const mx::array* a = nb::inst_ptr<mx::array>(h);
  return static_cast<int>(a->ndim()) >= min_ndim ? a : nullptr;
}

bool last_axis_param(nb::handle h, const mx::array& x, std::optional<mx::array>& out) {
  if (h.is_none()) {
    out.reset();
    return true;
  }
  const mx::array* p = array(h);
  if (!p || p->ndim() != 1 || p->shape(0) != x.shape(-1) || p->dtype() != x.dtype()) {
    return false;
  }
  out = *p;
  return true;
}

bool real(nb::handle h, double& value, double min, bool above_min) {
  if (PyFloat_CheckExact(h.ptr())) {
    value = PyFloat_AS_DOUBLE(h.ptr());
  } else if (PyLong_CheckExact(h.ptr())) { // as the Python path's float(value)
    value = PyLong_AsDouble(h.ptr());
    if (value == -1.0 && PyErr_Occurred()) {
      PyErr_Clear(); // too large: the Python path reports it
      return false;
    }
  } else {
    return false;
  }
  return std::isfinite(value) && (above_min ? value > min : value >= min);
}

bool int32(nb::handle h, int& value) {
  if (!PyLong_CheckExact(h.ptr())) {
    return false;
  }
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
  if (overflow || v < INT_MIN || v > INT_MAX) {
    return false;
  }
  value = static_cast<int>(v);
  return true;
}

bool boolean(nb::handle h, bool& value) {
  if (!PyBool_Check(h.ptr())) {
    return false;
  }
  value = h.ptr() == Py_True;
  return true;
}

void bind(nb::module_& m) {
  m.def("set_kernel_dtypes", &set_kernel_dtypes, nb::arg("op"), nb::arg("gpu"), nb::arg("dtypes"),
        "Tells the <op>_hot entry points which dtypes have a kernel (fused/_dispatch.py's tables).");
}

} // namespace mlxr::hot

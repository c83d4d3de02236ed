#include "bindings/reference_call.h"

#include <mutex>
#include <unordered_set>

namespace mlxr {

PyObject* keep_reference(nb::handle fn) {
  static std::mutex mutex;
  static std::unordered_set<PyObject*> kept;
  std::lock_guard<std::mutex> lock(mutex);
  if (kept.insert(fn.ptr()).second) {
    fn.inc_ref();
  }
  return fn.ptr();
}

std::vector<mx::array> to_arrays(const nb::object& result) {
  if (nb::isinstance<mx::array>(result)) {
    return {nb::cast<mx::array>(result)};
  }
  std::vector<mx::array> arrays;
  for (nb::handle item : result) {
    arrays.push_back(nb::cast<mx::array>(item));
  }
  return arrays;
}

} // namespace mlxr

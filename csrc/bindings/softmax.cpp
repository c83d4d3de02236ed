#include "bindings/hot_path.h"
#include "bindings/reference_call.h"
#include "softmax.h"

namespace mlxr {

namespace {

mx::array build(const mx::array& x, int n_axes, nb::handle reference, mx::Stream stream) {
  PyObject* ref = keep_reference(reference);
  Fallback fallback = [ref, stream, n_axes](const std::vector<mx::array>& in) {
    nb::gil_scoped_acquire gil; // the axes list is a Python object
    nb::list axes;
    for (int i = -n_axes; i < 0; ++i) {
      axes.append(i);
    }
    return call_reference(ref, stream, in[0], axes);
  };
  return softmax(x, n_axes, std::move(fallback), stream);
}

} // namespace

void bind_softmax(nb::module_& m) {
  m.def(
      "softmax",
      [](const mx::array& x, int n_axes, nb::callable reference, mx::Stream stream) {
        return build(x, n_axes, reference, stream);
      },
      nb::arg("x"),
      nb::arg("n_axes"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused softmax over the last n_axes axes (validated arguments; see mlxr.fused.softmax).");
  m.def(
      "softmax_hot",
      [](nb::handle x, nb::handle axis, nb::handle precise, nb::handle reference) -> nb::object {
        const mx::array* xa = hot::array(x, 1);
        int ax;
        bool p;
        if (!xa || !hot::int32(axis, ax) || (ax != -1 && ax != static_cast<int>(xa->ndim()) - 1) ||
            !hot::boolean(precise, p)) {
          return nb::none();
        }
        auto stream = hot::kernel_stream("softmax", xa->dtype());
        return stream ? nb::cast(build(*xa, 1, reference, *stream)) : nb::none();
      },
      nb::arg("x").none(), nb::arg("axis").none(), nb::arg("precise").none(), nb::arg("reference").none(),
      "softmax(x, axis) over the last axis for the common call, else None (bindings/hot_path.h).");
}

} // namespace mlxr

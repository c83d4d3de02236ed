#include "bindings/reference_call.h"
#include "softmax.h"

namespace mlxr {

void bind_softmax(nb::module_& m) {
  m.def(
      "softmax",
      [](const mx::array& x, int n_axes, nb::callable reference, mx::Stream stream) {
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
      },
      nb::arg("x"),
      nb::arg("n_axes"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused softmax over the last n_axes axes (validated arguments; see mlxr.fused.softmax).");
}

} // namespace mlxr

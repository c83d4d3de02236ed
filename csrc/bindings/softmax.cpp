#include "bindings/reference_call.h"
#include "softmax.h"

namespace mlxr {

void bind_softmax(nb::module_& m) {
  m.def(
      "softmax",
      [](const mx::array& x, nb::callable reference, mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        Fallback fallback = [ref, stream](const std::vector<mx::array>& in) {
          return call_reference(ref, stream, in[0], -1);
        };
        return softmax(x, std::move(fallback), stream);
      },
      nb::arg("x"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused last-axis softmax primitive (validated arguments; see mlxr.fused.softmax).");
}

} // namespace mlxr

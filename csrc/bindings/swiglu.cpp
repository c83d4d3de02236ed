#include "bindings/reference_call.h"
#include "swiglu.h"

namespace mlxr {

void bind_swiglu(nb::module_& m) {
  m.def(
      "swiglu",
      [](const mx::array& gate, const mx::array& up, nb::callable reference, mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        Fallback fallback = [ref, stream](const std::vector<mx::array>& in) {
          return call_reference(ref, stream, in[0], in[1]);
        };
        return swiglu(gate, up, std::move(fallback), stream);
      },
      nb::arg("gate"),
      nb::arg("up"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused SwiGLU primitive (validated, same-shape arguments; see mlxr.fused.swiglu).");
}

} // namespace mlxr

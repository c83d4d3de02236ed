#include "bindings/hot_path.h"
#include "bindings/reference_call.h"
#include "swiglu.h"

namespace mlxr {

namespace {

mx::array build(const mx::array& gate, const mx::array& up, nb::handle reference, mx::Stream stream) {
  PyObject* ref = keep_reference(reference);
  Fallback fallback = [ref, stream](const std::vector<mx::array>& in) {
    return call_reference(ref, stream, in[0], in[1]);
  };
  return swiglu(gate, up, std::move(fallback), stream);
}

} // namespace

void bind_swiglu(nb::module_& m) {
  m.def(
      "swiglu",
      [](const mx::array& gate, const mx::array& up, nb::callable reference, mx::Stream stream) {
        return build(gate, up, reference, stream);
      },
      nb::arg("gate"),
      nb::arg("up"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused SwiGLU primitive (validated, same-shape arguments; see mlxr.fused.swiglu).");
  m.def(
      "swiglu_hot",
      [](nb::handle gate, nb::handle up, nb::handle reference) -> nb::object {
        const mx::array* g = hot::array(gate);
        const mx::array* u = hot::array(up);
        if (!g || !u || g->shape() != u->shape() || g->dtype() != u->dtype()) {
          return nb::none();
        }
        auto stream = hot::kernel_stream("swiglu", g->dtype());
        return stream ? nb::cast(build(*g, *u, reference, *stream)) : nb::none();
      },
      nb::arg("gate").none(), nb::arg("up").none(), nb::arg("reference").none(),
      "swiglu(gate, up) for same-shape, same-dtype arguments, else None (bindings/hot_path.h).");
}

} // namespace mlxr

#include "bindings/reference_call.h"
#include "rope.h"

namespace mlxr {

void bind_rope(nb::module_& m) {
  m.def(
      "rope",
      [](const mx::array& x,
         const mx::array& offset,
         const mx::array& inv_freqs,
         int dims,
         bool traditional,
         double scale,
         bool forward,
         nb::callable reference,
         mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        auto make = [ref, dims, traditional, scale, stream](bool direction) -> Fallback {
          return [=](const std::vector<mx::array>& in) {
            return call_reference(ref, stream, in[0], in[1], in[2], dims, traditional, scale,
                                  direction);
          };
        };
        return rope(x, offset, inv_freqs, dims, traditional, scale, forward, make(forward),
                    make(!forward), stream);
      },
      nb::arg("x"),
      nb::arg("offset"),
      nb::arg("inv_freqs"),
      nb::arg("dims"),
      nb::arg("traditional"),
      nb::arg("scale"),
      nb::arg("forward"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused RoPE primitive (validated arguments; see mlxr.fused.rope). `reference` is "
      "rope_rotate(x, offset, inv_freqs, dims, traditional, scale, forward).");
}

} // namespace mlxr

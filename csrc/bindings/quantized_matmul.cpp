#include "bindings/reference_call.h"
#include "cpu/quantized_matmul.h"
#include "quantized_matmul.h"

namespace mlxr {

void bind_quantized_matmul(nb::module_& m) {
  m.def("quantized_matmul_gemv_max_rows", &cpu::qmm_gemv_max_rows,
        "Rows of x up to which quantized_matmul runs its GEMV kernel (else GEMM).");
  m.def(
      "quantized_matmul",
      [](const mx::array& x,
         const mx::array& w,
         const mx::array& scales,
         const mx::array& biases,
         bool transpose,
         int group_size,
         int bits,
         nb::callable reference,
         mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        Fallback fallback = [ref, transpose, group_size, bits, stream](
                                const std::vector<mx::array>& in) {
          return call_reference(ref, stream, in[0], in[1], in[2], in[3], transpose, group_size,
                                bits);
        };
        return quantized_matmul(x, w, scales, biases, transpose, group_size, bits,
                                std::move(fallback), stream);
      },
      nb::arg("x"),
      nb::arg("w"),
      nb::arg("scales"),
      nb::arg("biases"),
      nb::arg("transpose"),
      nb::arg("group_size"),
      nb::arg("bits"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused affine quantized matmul primitive (validated arguments; see "
      "mlxr.fused.quantized_matmul).");
}

} // namespace mlxr

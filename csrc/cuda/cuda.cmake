# CUDA kernels, built only when the installed MLX is a CUDA build (see CMakeLists.txt).
# Included from CMakeLists.txt, so MLXR_GPU_KERNELS set here is visible there.

# ---------------------------------------------------------------- toolchain
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90) # Hopper (H100/H200)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# ---------------------------------------------------------------- kernels + host dispatch
file(GLOB MLXR_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu)
add_library(mlxr_cuda OBJECT ${MLXR_CUDA_SOURCES})
set_target_properties(mlxr_cuda PROPERTIES
  CUDA_STANDARD 20
  CUDA_STANDARD_REQUIRED ON
  POSITION_INDEPENDENT_CODE ON
  INTERPROCEDURAL_OPTIMIZATION OFF # the GPU machine's linker cannot run LTO
  CUDA_RUNTIME_LIBRARY Static)
# csrc/cuda holds fmt/format.h, a stand-in for the fmt that MLX's CUDA headers include.
target_include_directories(mlxr_cuda PRIVATE
  ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_LIST_DIR}/.. ${CMAKE_CURRENT_LIST_DIR}/../..)
target_link_libraries(mlxr_cuda PRIVATE mlx)
target_compile_definitions(mlxr_cuda PRIVATE MLXR_GPU MLXR_CUDA)
target_compile_options(mlxr_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xptxas=-warn-spills -lineinfo>)

# ---------------------------------------------------------------- into the extension
target_link_libraries(_ext PRIVATE mlxr_cuda CUDA::cudart_static)
target_compile_definitions(_ext PRIVATE MLXR_GPU MLXR_CUDA)
set(MLXR_GPU_KERNELS cuda)
message(STATUS "mlxr: CUDA kernels for sm_${CMAKE_CUDA_ARCHITECTURES}")

# Metal kernels: included by CMakeLists.txt when the installed MLX was built with Metal.
# Host code (csrc/metal/*.cpp) joins the extension; kernels/*.metal become mlxr.metallib,
# installed next to the extension, where csrc/metal/encode.cpp loads it.

file(GLOB MLXR_METAL_HOST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
file(GLOB MLXR_METAL_KERNELS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.metal)
file(GLOB MLXR_METAL_KERNEL_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.h)

target_sources(_ext PRIVATE ${MLXR_METAL_HOST_SOURCES})
target_include_directories(_ext PRIVATE ${MLX_INCLUDE_DIRS}) # metal_cpp for mlx/backend/metal/device.h
# MLXR_GPU declares eval_gpu overrides; MLXR_METAL selects Metal-only op details.
target_compile_definitions(_ext PRIVATE MLXR_GPU MLXR_METAL)

# mlx_build_metallib comes from MLX's CMake package (cmake/extension.cmake).
mlx_build_metallib(
  TARGET mlxr_metallib
  TITLE mlxr
  SOURCES ${MLXR_METAL_KERNELS}
  INCLUDE_DIRS ${PROJECT_SOURCE_DIR} ${MLX_INCLUDE_DIRS}
  DEPS ${MLXR_METAL_KERNEL_HEADERS}
  OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
add_dependencies(_ext mlxr_metallib)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mlxr.metallib DESTINATION mlxr)

set(MLXR_GPU_KERNELS metal)

#include "cuda/runtime.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "mlx/allocator.h"

namespace mlxr::cuda {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("[mlxr cuda] ") + what + ": " +
                             cudaGetErrorString(err));
  }
}

namespace {

// Our runtime keeps its own current device per thread; MLX's is invisible to it.
thread_local int current_device = -1;

cudaError_t try_use_device(int device) {
  if (current_device == device) {
    return cudaSuccess;
  }
  cudaError_t err = cudaSetDevice(device);
  current_device = err == cudaSuccess ? device : -1;
  return err;
}

void use_device(int device) {
  check(try_use_device(device), "cudaSetDevice");
}

// One pool per device, apart from MLX's: freed outputs stay reserved (up to half the device's
// memory) so that steady-state allocations do not map fresh pages.
cudaMemPool_t output_pool(int device) {
  static std::mutex mutex;
  static std::map<int, cudaMemPool_t> pools;
  std::lock_guard lock(mutex);
  auto it = pools.find(device);
  if (it != pools.end()) {
    return it->second;
  }
  cudaMemPoolProps props = {};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool;
  check(cudaMemPoolCreate(&pool, &props), "cudaMemPoolCreate");
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  uint64_t keep = total_bytes / 2;
  check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
        "cudaMemPoolSetAttribute");
  pools.emplace(device, pool);
  return pool;
}

bool use_managed_memory() {
  static const bool managed = [] {
    const char* v = std::getenv("MLXR_CUDA_ALLOC");
    return v && std::strcmp(v, "managed") == 0;
  }();
  return managed;
}

// Frees an output buffer once MLX drops the array (its GPU users have completed by then).
void free_output(mx::allocator::Buffer buffer) {
  auto* buf = static_cast<mx::cu::CudaBuffer*>(buffer.ptr());
  if (buf->device >= 0) {
    // Errors ignored: this may run at exit, after CUDA has shut down.
    if (try_use_device(buf->device) == cudaSuccess) {
      cudaFreeAsync(buf->data, nullptr);
    }
  } else if (buf->data) {
    // A CPU read made MLX move the data to its unified memory (Buffer::raw_ptr).
    cudaPointerAttributes attr = {};
    if (cudaPointerGetAttributes(&attr, buf->data) == cudaSuccess &&
        attr.type == cudaMemoryTypeHost) {
      cudaFreeHost(buf->data);
    } else {
      cudaFree(buf->data);
    }
  }
  delete buf;
}

} // namespace

CUfunction function(mx::cu::CommandEncoder& encoder, const void* kernel) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, CUfunction> cache;
  int device = encoder.device().cuda_device();
  std::lock_guard lock(mutex);
  auto key = std::make_pair(kernel, device);
  auto it = cache.find(key);
  if (it != cache.end()) {
    return it->second;
  }
  use_device(device);
  cudaFunction_t func = nullptr;
  check(cudaGetFuncBySymbol(&func, kernel), "cudaGetFuncBySymbol");
  cache.emplace(key, reinterpret_cast<CUfunction>(func));
  return reinterpret_cast<CUfunction>(func);
}

void allocate_output(mx::array& out, mx::cu::CommandEncoder& encoder) {
  size_t bytes = out.nbytes();
  if (bytes == 0 || use_managed_memory()) {
    out.set_data(mx::allocator::malloc(bytes));
    return;
  }
  int device = encoder.device().cuda_device();
  use_device(device);
  cudaMemPool_t pool = output_pool(device);
  cudaStream_t stream = encoder.stream();
  void* data = nullptr;
  cudaError_t err = cudaMallocFromPoolAsync(&data, bytes, pool, stream);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError(); // clear it, give back what the pool keeps, and try once more
    check(cudaMemPoolTrimTo(pool, 0), "cudaMemPoolTrimTo");
    err = cudaMallocFromPoolAsync(&data, bytes, pool, stream);
  }
  check(err, "cudaMallocFromPoolAsync");
  // MLX reads CudaBuffer {data, size, device} through Buffer::ptr() (gpu_ptr, raw_ptr).
  auto* buf = new mx::cu::CudaBuffer{data, bytes, device};
  out.set_data(mx::allocator::Data(mx::allocator::Buffer(buf), free_output));
}

} // namespace mlxr::cuda

#include "cuda/runtime.h"

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

// Our output memory: a stream-ordered pool per device, apart from MLX's (freed memory stays
// reserved up to half the device, so that large outputs need no fresh mapping), fronted by
// a free list per rounded size like MLX's own buffer cache (no driver call per output).
// Reusing a buffer as soon as MLX drops it is what MLX's cache does too: MLX keeps a
// kernel's inputs alive until the kernel has completed.
class OutputMemory {
 public:
  static OutputMemory& get() {
    static auto* memory = new OutputMemory(); // never destroyed: buffers may outlive exit
    return *memory;
  }

  static size_t round_size(size_t bytes) {
    constexpr size_t kPage = 16384;
    if (bytes >= kPage) {
      return (bytes + kPage - 1) / kPage * kPage;
    }
    size_t size = 256;
    while (size < bytes) {
      size *= 2;
    }
    return size;
  }

  void* allocate(int device, size_t size, cudaStream_t stream) {
    {
      std::lock_guard lock(mutex_);
      auto it = free_.find({device, size});
      if (it != free_.end() && !it->second.empty()) {
        void* data = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        return data;
      }
    }
    cudaMemPool_t pool = device_state(device).pool;
    void* data = nullptr;
    cudaError_t err = cudaMallocFromPoolAsync(&data, size, pool, stream);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError(); // clear it, give back what we keep, and try once more
      release_cached(device);
      check(cudaMemPoolTrimTo(pool, 0), "cudaMemPoolTrimTo");
      err = cudaMallocFromPoolAsync(&data, size, pool, stream);
    }
    check(err, "cudaMallocFromPoolAsync");
    return data;
  }

  // May run at exit, after CUDA has shut down: errors are ignored. Buffers up to an eighth of
  // the cap are kept: a pool round trip per large output cost 4-6 us a call (rope prefill,
  // 134-268 MB, H100: 88-91 -> 92-97 % of copy in the bench, NOTES.md, eighth session). When
  // the kept ones outgrow the cap, the stale ones go back rather than the new one.
  void release(int device, void* data, size_t size) noexcept {
    std::vector<std::pair<int, void*>> to_pool;
    {
      std::lock_guard lock(mutex_);
      if (size > cap_ / 8) { // one buffer would take much of the cap: back to the pool
        to_pool.emplace_back(device, data);
      } else {
        if (cached_bytes_ + size > cap_) {
          for (auto& [key, buffers] : free_) {
            for (void* old : buffers) {
              to_pool.emplace_back(key.first, old);
            }
            buffers.clear();
          }
          cached_bytes_ = 0;
        }
        free_[{device, size}].push_back(data);
        cached_bytes_ += size;
      }
    }
    for (auto [dev, ptr] : to_pool) {
      if (try_use_device(dev) == cudaSuccess) {
        cudaFreeAsync(ptr, device_state(dev).free_stream);
      }
    }
  }

 private:
  struct DeviceState {
    cudaMemPool_t pool = nullptr;
    cudaStream_t free_stream = nullptr; // non-blocking: frees wait for no one
  };

  DeviceState& device_state(int device) {
    std::lock_guard lock(mutex_);
    DeviceState& state = devices_[device];
    if (!state.pool) {
      cudaMemPoolProps props = {};
      props.allocType = cudaMemAllocationTypePinned;
      props.location.type = cudaMemLocationTypeDevice;
      props.location.id = device;
      check(cudaMemPoolCreate(&state.pool, &props), "cudaMemPoolCreate");
      size_t free_bytes = 0, total_bytes = 0;
      check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
      uint64_t keep = total_bytes / 2;
      // Kept buffers are part of what the pool keeps reserved anyway: up to a quarter of the
      // largest device.
      cap_ = std::max<size_t>(cap_, total_bytes / 4);
      check(cudaMemPoolSetAttribute(state.pool, cudaMemPoolAttrReleaseThreshold, &keep),
            "cudaMemPoolSetAttribute");
      check(cudaStreamCreateWithFlags(&state.free_stream, cudaStreamNonBlocking),
            "cudaStreamCreateWithFlags");
    }
    return state;
  }

  void release_cached(int device) {
    std::lock_guard lock(mutex_);
    for (auto& [key, buffers] : free_) {
      if (key.first != device) {
        continue;
      }
      for (void* data : buffers) {
        cudaFree(data); // synchronous: the pool must see the memory back before we retry
        cached_bytes_ -= key.second;
      }
      buffers.clear();
    }
  }

  std::mutex mutex_;
  std::map<int, DeviceState> devices_;
  std::map<std::pair<int, size_t>, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
  size_t cap_ = 0; // set with the first device's pool
};

bool use_managed_memory() {
  static const bool managed = [] {
    const char* v = std::getenv("MLXR_CUDA_ALLOC");
    return v && std::strcmp(v, "managed") == 0;
  }();
  return managed;
}

// Called when MLX drops an output array.
void free_output(mx::allocator::Buffer buffer) {
  auto* buf = static_cast<mx::cu::CudaBuffer*>(buffer.ptr());
  if (buf->device >= 0) {
    OutputMemory::get().release(buf->device, buf->data, buf->size);
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

int max_dynamic_smem(mx::cu::CommandEncoder& encoder, const void* kernel, int static_bytes) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, int> allowed;
  int device = encoder.device().cuda_device();
  std::lock_guard lock(mutex);
  auto key = std::make_pair(kernel, device);
  auto it = allowed.find(key);
  if (it != allowed.end()) {
    return it->second;
  }
  use_device(device);
  int optin = 0;
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute");
  int bytes = optin - static_bytes;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "cudaFuncSetAttribute");
  allowed.emplace(key, bytes);
  return bytes;
}

int sm_count(mx::cu::CommandEncoder& encoder) {
  static std::mutex mutex;
  static std::map<int, int> counts;
  int device = encoder.device().cuda_device();
  std::lock_guard lock(mutex);
  auto it = counts.find(device);
  if (it != counts.end()) {
    return it->second;
  }
  use_device(device);
  int count = 0;
  check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  counts.emplace(device, count);
  return count;
}

mx::allocator::Data output_data(size_t bytes, mx::cu::CommandEncoder& encoder) {
  if (bytes == 0 || use_managed_memory()) {
    return mx::allocator::malloc(bytes);
  }
  int device = encoder.device().cuda_device();
  use_device(device);
  size_t size = OutputMemory::round_size(bytes);
  void* data = OutputMemory::get().allocate(device, size, encoder.stream());
  // MLX reads CudaBuffer {data, size, device} through Buffer::ptr() (gpu_ptr, raw_ptr).
  auto* buf = new mx::cu::CudaBuffer{data, size, device};
  return mx::allocator::Data(mx::allocator::Buffer(buf), free_output);
}

void allocate_output(mx::array& out, mx::cu::CommandEncoder& encoder) {
  out.set_data(output_data(out.nbytes(), encoder));
}

bool no_work(std::vector<mx::array>& outputs) {
  if (outputs[0].size() != 0) {
    return false;
  }
  for (mx::array& out : outputs) {
    out.set_data(mx::allocator::malloc(0));
  }
  return true;
}

void check_row_length(int64_t row_size, const char* op) {
  if (row_size > INT32_MAX) {
    throw std::runtime_error(std::string("[") + op + "] rows longer than 2^31 - 1 elements on the GPU");
  }
}

bool in_unified_memory(const mx::array& a) {
  const auto* buf = static_cast<const mx::cu::CudaBuffer*>(a.buffer().ptr());
  return buf && buf->device < 0;
}

void output_in_place_or_new(mx::array& out, const mx::array& in, mx::cu::CommandEncoder& encoder) {
  if (in.is_donatable() && in.flags().row_contiguous && in.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(in);
  } else {
    allocate_output(out, encoder);
  }
}

} // namespace mlxr::cuda

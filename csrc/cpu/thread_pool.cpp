#include "cpu/thread_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace mlxr::cpu {

namespace {

class Pool {
 public:
  explicit Pool(int n_workers) : owner_pid_(getpid()) {
    for (int i = 0; i < n_workers; ++i) {
      threads_.emplace_back([this] { work(); });
    }
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) {
      t.join();
    }
  }

  void run(int n_tasks, const std::function<void(int)>& task) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || threads_.empty() || n_tasks < 2 || getpid() != owner_pid_) {
      for (int i = 0; i < n_tasks; ++i) {
        task(i);
      }
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      n_tasks_ = n_tasks;
      next_.store(0);
      active_ = static_cast<int>(threads_.size());
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return active_ == 0; });
    task_ = nullptr;
    if (error_) {
      std::rethrow_exception(error_);
    }
  }

 private:
  // Claims tasks until none are left; shared by the caller and the workers.
  void drain() {
    for (int i = next_.fetch_add(1); i < n_tasks_; i = next_.fetch_add(1)) {
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) {
          error_ = std::current_exception();
        }
      }
    }
  }

  void work() {
    uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) {
          return;
        }
        seen = generation_;
      }
      drain();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --active_;
      }
      done_.notify_one();
    }
  }

  pid_t owner_pid_;
  std::vector<std::thread> threads_;
  std::mutex busy_; // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* task_ = nullptr;
  int n_tasks_ = 0;
  std::atomic<int> next_{0};
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at exit can deadlock.
  static Pool* p = new Pool(num_threads() - 1);
  return *p;
}

} // namespace

int num_threads() {
  static const int n = [] {
    int hw = std::max(1u, std::thread::hardware_concurrency());
    if (const char* cap = std::getenv("MLXR_NUM_THREADS")) {
      int want = std::atoi(cap);
      if (want >= 1) {
        hw = std::min(hw, want);
      }
    }
    return hw;
  }();
  return n;
}

void parallel_for(int n_tasks, const std::function<void(int)>& task) {
  if (num_threads() == 1) {
    for (int i = 0; i < n_tasks; ++i) {
      task(i);
    }
    return;
  }
  pool().run(n_tasks, task);
}

} // namespace mlxr::cpu

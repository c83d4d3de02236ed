// A small process-wide worker pool for CPU kernels that split independent output blocks.
// MLX runs eval_cpu on one stream thread; a kernel that wants both cores of a small box hands
// disjoint tasks to these workers. Tasks write disjoint outputs and each is computed the same
// way whichever thread runs it, so results do not depend on the thread count.
#pragma once

#include <functional>

namespace mlxr::cpu {

// Worker count used by parallel_for (the caller included): hardware threads, capped by the
// MLXR_NUM_THREADS environment variable (1 = everything runs on the calling thread).
int num_threads();

// Runs task(i) for every i in [0, n_tasks) and returns when all are done. Only one parallel
// region runs at a time; a caller that finds the pool busy (another stream) runs its tasks
// itself, as does a forked child. Exceptions from tasks are rethrown on the caller.
void parallel_for(int n_tasks, const std::function<void(int)>& task);

} // namespace mlxr::cpu

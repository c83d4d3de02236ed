// Simulator self-test: simd collectives over full, partial and divergent simdgroups, and a
// threadgroup array with barriers. Expected values are computed in tests/test_metal_sim.py.
#include <metal_stdlib>

using namespace metal;

[[kernel]] void collectives(
    device const float* in [[buffer(0)]],
    device float* out [[buffer(1)]],
    uint i [[thread_position_in_grid]],
    uint lane [[thread_index_in_simdgroup]]) {
  float v = in[i];
  out[i * 6 + 0] = simd_sum(v);
  out[i * 6 + 1] = simd_max(v);
  out[i * 6 + 2] = simd_shuffle_down(v, 1);
  out[i * 6 + 3] = simd_shuffle_xor(v, 3);
  out[i * 6 + 4] = simd_broadcast(v, 5);
  out[i * 6 + 5] = lane < 16 ? simd_sum(v) : -1.0f; // only the lower half is active
}

// Reverses each threadgroup's values through threadgroup memory.
[[kernel]] void reverse_group(
    device const float* in [[buffer(0)]],
    device float* out [[buffer(1)]],
    uint i [[thread_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint n [[threads_per_threadgroup]]) {
  threadgroup float staged[64];
  staged[lid] = in[i];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[i] = staged[n - 1 - lid];
}

// Planted race for the simulator's own test: both threads write, meet at a simd collective
// (which orders no memory), then read each other's element.
[[kernel]] void unsynchronised(
    device float* out [[buffer(0)]],
    uint lid [[thread_position_in_threadgroup]]) {
  threadgroup float shared[2];
  shared[lid] = static_cast<float>(lid);
  float count = simd_sum(1.0f);
  out[lid] = shared[1 - lid] + count;
}

// out[i] = in[i + 1]: correct out of place, a race when in and out are one buffer (in place).
[[kernel]] void shift_left(
    device const float* in [[buffer(0)]],
    device float* out [[buffer(1)]],
    uint i [[thread_position_in_grid]],
    uint n [[threads_per_grid]]) {
  out[i] = i + 1 < n ? in[i + 1] : 0.0f;
}

// Every threadgroup writes the same elements: a write-write race across threadgroups.
[[kernel]] void overlapping_writes(
    device float* out [[buffer(0)]],
    uint lid [[thread_position_in_threadgroup]]) {
  out[lid] = 1.0f;
}

// Prefix sums, votes, vector arithmetic, half math and as_type, one row of 8 per thread.
[[kernel]] void library_subset(
    device const float* in [[buffer(0)]],
    device float* out [[buffer(1)]],
    uint i [[thread_position_in_grid]]) {
  float v = in[i];
  float4 a = float4(v, 2.0f * v, 3.0f, 4.0f);
  float4 b = a * 2.0f + float4(1.0f);
  out[i * 8 + 0] = simd_prefix_inclusive_sum(v);
  out[i * 8 + 1] = simd_prefix_exclusive_sum(v);
  out[i * 8 + 2] = simd_all(v > -100.0f) ? 1.0f : 0.0f;
  out[i * 8 + 3] = simd_any(v > 1.5f) ? 1.0f : 0.0f;
  out[i * 8 + 4] = dot(a, b);
  out[i * 8 + 5] = static_cast<float>(metal::exp(static_cast<half>(v)));
  out[i * 8 + 6] = static_cast<float>(as_type<uint>(v) >> 23);
  out[i * 8 + 7] = metal::max(b.y, b.z);
}

#include "microscale/cuda/device_facts.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include <cuda_runtime.h>

namespace microscale::cuda::detail {
namespace {

struct Facts {
  int sms = 1;
  int max_shared = 48 * 1024;
};

int current_device() {
  int device = 0;
  cudaGetDevice(&device);
  return device;
}

Facts facts() {
  static std::mutex mutex;
  static std::map<int, Facts> cache;
  const int device = current_device();
  const std::lock_guard lock(mutex);
  auto it = cache.find(device);
  if (it == cache.end()) {
    Facts f;
    cudaDeviceGetAttribute(&f.sms, cudaDevAttrMultiProcessorCount, device);
    cudaDeviceGetAttribute(&f.max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    f.sms = std::max(f.sms, 1);
    it = cache.emplace(device, f).first;
  }
  return it->second;
}

}  // namespace

int multiprocessor_count() { return facts().sms; }
int max_shared_per_block_optin() { return facts().max_shared; }

int resident_blocks(const void* kernel, int threads, int dynamic_shared) {
  static std::mutex mutex;
  static std::map<std::tuple<int, const void*, int, int>, int> cache;
  const auto key = std::make_tuple(current_device(), kernel, threads, dynamic_shared);
  const std::lock_guard lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, dynamic_shared) != cudaSuccess) {
    cudaGetLastError();  // leave no sticky error for the launch that follows
    blocks = 1;
  }
  blocks = std::max(blocks, 1);
  cache.emplace(key, blocks);
  return blocks;
}

}  // namespace microscale::cuda::detail

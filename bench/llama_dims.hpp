#pragma once
// Llama-3-8B's and Llama-3-70B's dimensions, and the distinct linear shapes of their decoder layers,
// in one place: the GPU kernel driver's tables (bench/cuda/fp4_driver.cu, built without the library's
// model module) and the 8B model config of llama_shapes.hpp both read them.
#include <cstdint>

namespace microscale::bench {

struct LlamaDims {
  std::int64_t hidden;
  std::int64_t intermediate;
  std::int64_t heads;
  std::int64_t kv_heads;
  std::int64_t head_dim;
};

inline constexpr LlamaDims kLlama3_8B{4096, 14336, 32, 8, 128};
inline constexpr LlamaDims kLlama3_70B{8192, 28672, 64, 8, 128};

// A weight of n output and k input features.
struct LinearShapeRow {
  const char* name;
  std::int64_t n;
  std::int64_t k;
};

// The four distinct linear shapes of a layer of each model: q/o (hidden x hidden), k/v (KV width x
// hidden), gate/up (intermediate x hidden), down (hidden x intermediate).
inline constexpr LinearShapeRow kLlama3LinearShapes[] = {
    {"8B q/o", kLlama3_8B.hidden, kLlama3_8B.hidden},
    {"8B k/v", kLlama3_8B.kv_heads * kLlama3_8B.head_dim, kLlama3_8B.hidden},
    {"8B gate/up", kLlama3_8B.intermediate, kLlama3_8B.hidden},
    {"8B down", kLlama3_8B.hidden, kLlama3_8B.intermediate},
    {"70B q/o", kLlama3_70B.hidden, kLlama3_70B.hidden},
    {"70B k/v", kLlama3_70B.kv_heads * kLlama3_70B.head_dim, kLlama3_70B.hidden},
    {"70B gate/up", kLlama3_70B.intermediate, kLlama3_70B.hidden},
    {"70B down", kLlama3_70B.hidden, kLlama3_70B.intermediate},
};

}  // namespace microscale::bench

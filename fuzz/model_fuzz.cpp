// libFuzzer harness: a model directory of arbitrary config.json and model.safetensors, loaded by the
// CPU runtime (plain or compressed-tensors weights, decoded through CheckpointLayout) and run on three
// tokens. Input: a little-endian u32 n, n bytes of config.json, then the safetensors file.
#include <algorithm>
#include <cstring>

#include "fuzz_input.hpp"
#include "microscale/model/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::uint32_t config_bytes = 0;
  std::memcpy(&config_bytes, data, 4);
  if (config_bytes > size - 4) return 0;
  static const auto dir = [] {
    auto d = microscale::fuzz::scratch_path("model");
    std::filesystem::create_directories(d);
    return d;
  }();
  microscale::fuzz::write_input(dir / "config.json", data + 4, config_bytes);
  microscale::fuzz::write_input(dir / "model.safetensors", data + 4 + config_bytes, size - 4 - config_bytes);
  microscale::fuzz::expect_clean([&] {
    const auto model = microscale::model::Model::load(dir);
    std::vector<std::int32_t> tokens = {0, 1, 2};
    for (auto& t : tokens) t = static_cast<std::int32_t>(std::min<std::int64_t>(t, model.config().vocab_size - 1));
    (void)model.forward(tokens, 1, 3);
  });
  return 0;
}

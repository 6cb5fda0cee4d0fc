// libFuzzer harness: a config.json of arbitrary text, parsed as the runtime parses it (the model's
// architecture, then its quantization_config as a checkpoint layout).
#include <nlohmann/json.hpp>

#include "fuzz_input.hpp"
#include "microscale/export/checkpoint_layout.hpp"
#include "microscale/model/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;  // the loaders report invalid JSON before parsing (tested elsewhere)
  microscale::fuzz::expect_clean([&] { (void)microscale::model::parse_config(json, "fuzz/config.json"); });
  microscale::fuzz::expect_clean(
      [&] { (void)microscale::exporter::CheckpointLayout::from_config(json, "fuzz/config.json"); });
  return 0;
}

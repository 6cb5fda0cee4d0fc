// libFuzzer harness: a GGUF file of arbitrary bytes, opened, then read as a model and a tokenizer
// (what `microscale eval FILE.gguf` does with it).
#include "fuzz_input.hpp"
#include "microscale/export/gguf_file.hpp"
#include "microscale/export/gguf_import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = microscale::fuzz::scratch_path("model.gguf");
  microscale::fuzz::write_input(path, data, size);
  microscale::fuzz::expect_clean([&] { const microscale::exporter::gguf::File file(path); });
  microscale::fuzz::expect_clean([&] { (void)microscale::exporter::read_gguf_tokenizer(path); });
  microscale::fuzz::expect_clean([&] { (void)microscale::exporter::read_gguf_model(path); });
  return 0;
}

// libFuzzer harness: a safetensors file of arbitrary bytes, opened, every float tensor converted.
#include "fuzz_input.hpp"
#include "microscale/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = microscale::fuzz::scratch_path("model.safetensors");
  microscale::fuzz::write_input(path, data, size);
  microscale::fuzz::expect_clean([&] {
    const microscale::io::SafetensorsFile file(path);
    for (const auto& tensor : file.tensors()) {
      if (microscale::io::is_float_dtype(tensor.dtype) && tensor.numel() <= (1 << 20)) {
        (void)microscale::io::to_f32(tensor);
      }
    }
  });
  return 0;
}

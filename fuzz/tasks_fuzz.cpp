// libFuzzer harness: a task file (JSON Lines) of arbitrary text, parsed as `eval --tasks` parses it.
#include "fuzz_input.hpp"
#include "microscale/eval/tasks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  microscale::fuzz::expect_clean([&] { (void)microscale::eval::parse_task_lines(text, "fuzz/tasks.jsonl"); });
  return 0;
}

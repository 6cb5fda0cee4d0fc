#include "microscale/eval/efficiency.hpp"

#include <sys/resource.h>

#include <chrono>

#include "microscale/core/error.hpp"
#include "microscale/eval/metrics.hpp"

namespace microscale::eval {

std::uint64_t file_bytes(const std::vector<std::filesystem::path>& files) {
  std::uint64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(f, ec);
    if (ec) fail("{}: cannot read its size: {}", f.string(), ec.message());
    total += size;
  }
  return total;
}

std::uint64_t peak_rss_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

DecodeTiming measure_decode(const model::Model& model, std::span<const std::int32_t> prompt, int new_tokens) {
  if (prompt.empty() || new_tokens <= 0) fail("measure_decode: needs a prompt and at least one new token");
  DecodeTiming timing;
  timing.prompt_tokens = static_cast<int>(prompt.size());
  timing.new_tokens = new_tokens;
  model::KvCache cache(model.config(), 1, static_cast<std::int64_t>(prompt.size()) + new_tokens);
  Matrix logits = model.forward_cached(prompt, 1, static_cast<int>(prompt.size()), cache);
  std::int32_t next = argmax(logits.view().row(logits.rows - 1));
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < new_tokens; ++step) {
    timing.output.push_back(next);
    const std::int32_t token[] = {next};
    logits = model.forward_cached(token, 1, 1, cache);
    next = argmax(logits.view().row(0));
  }
  timing.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  timing.tokens_per_second = timing.seconds > 0 ? new_tokens / timing.seconds : 0.0;
  return timing;
}

}  // namespace microscale::eval

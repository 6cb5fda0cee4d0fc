// Encode / decode throughput of the tokenizer on a text file (War and Peace by default), for each
// fixture tokenizer family or a given tokenizer.json. Prints a Markdown table.
//
//   build/tokenizer_bench [--text ../shared/data/war_and_peace.txt] [--tokenizer path/tokenizer.json]
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "microscale/tokenizer/tokenizer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    end = end == std::string_view::npos ? text.size() : end + 1;
    lines.push_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

template <typename F>
double best_seconds(int repeats, F&& work) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    work();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenizer encode/decode throughput"};
  std::string text_path = std::string(MICROSCALE_SOURCE_DIR) + "/../shared/data/war_and_peace.txt";
  std::vector<std::string> tokenizers;
  int repeats = 3;
  app.add_option("--text", text_path, "UTF-8 text to encode");
  app.add_option("--tokenizer", tokenizers, "tokenizer.json files (default: every fixture family)");
  app.add_option("--repeats", repeats, "best of this many runs");
  CLI11_PARSE(app, argc, argv);
  if (tokenizers.empty()) {
    for (const char* name : {"gpt2", "llama3", "qwen2", "llama2", "mistral"})
      tokenizers.push_back(fmt::format("{}/tests/fixtures/tokenizer/{}/tokenizer.json", MICROSCALE_SOURCE_DIR, name));
  }

  const std::string text = read_file(text_path);
  const auto lines = lines_of(text);
  const double megabytes = static_cast<double>(text.size()) / 1e6;
  fmt::print("text: {} ({:.2f} MB, {} lines), best of {}\n\n", text_path, megabytes, lines.size(), repeats);
  fmt::print("| tokenizer | tokens | encode whole text MB/s | encode per line MB/s | decode MB/s |\n");
  fmt::print("|---|---:|---:|---:|---:|\n");
  for (const std::string& path : tokenizers) {
    const auto tokenizer = microscale::tokenizer::Tokenizer::from_file(path);
    std::vector<std::int32_t> ids;
    const double whole = best_seconds(repeats, [&] { ids = tokenizer.encode(text, false); });
    std::size_t per_line_tokens = 0;
    const double per_line = best_seconds(repeats, [&] {
      per_line_tokens = 0;
      for (std::string_view line : lines) per_line_tokens += tokenizer.encode(line, false).size();
    });
    std::string decoded;
    const double decode = best_seconds(repeats, [&] { decoded = tokenizer.decode(ids); });
    const std::string name = std::filesystem::path(path).parent_path().filename().string();
    fmt::print("| {} | {} | {:.1f} | {:.1f} | {:.1f} |\n", name, ids.size(), megabytes / whole, megabytes / per_line,
               megabytes / decode);
    (void)per_line_tokens;
  }
  return 0;
}

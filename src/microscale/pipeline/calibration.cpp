#include "microscale/pipeline/calibration.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/io/json_file.hpp"

namespace microscale::pipeline {
namespace {

std::string read_calibration_text(const std::filesystem::path& file) {
  std::string content = io::read_file(file, "calibration text");
  if (file.extension() != ".jsonl") return content;

  std::string joined;
  std::istringstream lines(content);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto doc = nlohmann::json::parse(line);
      if (!doc.is_object() || !doc.contains("text") || !doc.at("text").is_string()) {
        fail("{}:{}: expected an object with a string field \"text\"", file.string(), number);
      }
      if (!joined.empty()) joined += "\n\n";
      joined += doc.at("text").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: not valid JSON: {}", file.string(), number, e.what());
    }
  }
  return joined;
}

}  // namespace

CalibrationSet load_calibration(const std::filesystem::path& file, const tokenizer::Tokenizer& tokenizer,
                                int samples, int seqlen, std::uint64_t seed) {
  if (samples <= 0 || seqlen <= 1) fail("calibration needs --calib-samples >= 1 and --calib-seqlen >= 2");
  const std::string text = read_calibration_text(file);
  const std::vector<std::int32_t> tokens = tokenizer.encode(text, false);
  const std::int64_t windows = static_cast<std::int64_t>(tokens.size()) / seqlen;
  if (windows < samples) {
    const double chars_per_token =
        tokens.empty() ? 4.0 : static_cast<double>(text.size()) / static_cast<double>(tokens.size());
    const std::int64_t needed = static_cast<std::int64_t>(samples) * seqlen;
    fail("{}: calibration text has {} tokens, enough for {} windows of {}; {} samples need {} tokens (about {} "
         "more characters of text), or lower --calib-samples / --calib-seqlen",
         file.string(), tokens.size(), windows, seqlen, samples, needed,
         static_cast<std::int64_t>(static_cast<double>(needed - static_cast<std::int64_t>(tokens.size())) *
                                   chars_per_token) + 1);
  }
  // Choose distinct windows with a portable generator: std::mt19937_64's output is fixed by the
  // standard, unlike the distributions, so the draw is done by hand (Fisher-Yates).
  std::vector<std::int64_t> order(static_cast<std::size_t>(windows));
  for (std::int64_t i = 0; i < windows; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  for (std::int64_t i = windows - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(i + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  CalibrationSet set;
  set.samples = samples;
  set.seqlen = seqlen;
  set.text_tokens = static_cast<std::int64_t>(tokens.size());
  set.tokens.reserve(static_cast<std::size_t>(samples) * static_cast<std::size_t>(seqlen));
  for (int s = 0; s < samples; ++s) {
    const auto begin = tokens.begin() + order[static_cast<std::size_t>(s)] * seqlen;
    set.tokens.insert(set.tokens.end(), begin, begin + seqlen);
  }
  return set;
}

}  // namespace microscale::pipeline

#pragma once
// Calibration windows: token sequences drawn from a text the user provides, reproducibly.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::pipeline {

struct CalibrationSet {
  int samples = 0;
  int seqlen = 0;
  std::vector<std::int32_t> tokens;   // [samples][seqlen], row-major
  std::int64_t text_tokens = 0;       // tokens in the whole text
};

// Reads plain text, or JSONL whose every line is an object with a "text" field (documents joined by a
// blank line). The text is tokenized once without special tokens and cut into non-overlapping windows
// of `seqlen`; `samples` of them are chosen at random (seeded) without replacement. Throws naming the
// file when it is missing, malformed, or too short (saying how many tokens and characters are needed).
CalibrationSet load_calibration(const std::filesystem::path& file, const tokenizer::Tokenizer& tokenizer,
                                int samples, int seqlen, std::uint64_t seed);

}  // namespace microscale::pipeline

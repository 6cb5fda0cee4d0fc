#pragma once
// Small formatting helpers shared by the subcommands' tables.
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "microscale/export/gguf_export.hpp"

namespace microscale::cli {

inline std::string human_bytes(std::uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.2f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

// "wrote out.gguf: 3.52 MB, 63 tensors (BF16 2, F32 25, MXFP4 36); llama, tokenizer gpt2/gpt-2"
inline void print_gguf_report(const exporter::GgufExportReport& r) {
  std::string types;
  for (const auto& [name, n] : r.tensors_by_type) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", name, n);
  fmt::print("wrote {}: {}, {} tensors ({}); architecture {}, tokenizer {}\n", r.path.string(), human_bytes(r.bytes),
             r.tensors, types, r.architecture, r.tokenizer);
}

}  // namespace microscale::cli

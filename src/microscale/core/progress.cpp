#include "microscale/core/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

namespace microscale {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto whole = static_cast<long>(seconds);
  if (whole < 3600) return fmt::format("{}m{:02}s", whole / 60, whole % 60);
  return fmt::format("{}h{:02}m", whole / 3600, (whole % 3600) / 60);
}

Progress::Progress(std::string label, std::int64_t total, bool quiet)
    : label_(std::move(label)), total_(total), quiet_(quiet) {
  const char* forced = std::getenv("MICROSCALE_PROGRESS");
  interactive_ = (forced != nullptr && std::string_view(forced) == "1") || isatty(STDERR_FILENO) == 1;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(std::int64_t steps, std::string_view detail) {
  done_ += steps;
  detail_ = detail;
  const auto now = std::chrono::steady_clock::now();
  // A terminal gets a line redrawn in place four times a second; a log gets a new line every 5 s.
  const auto period = interactive_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000);
  if (!quiet_ && done_ < total_ && now - last_draw_ > period) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!quiet_) draw(true);
}

void Progress::draw(bool final_line) {
  const double elapsed = elapsed_seconds();
  const double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const double eta = done_ > 0 ? elapsed * (1.0 - fraction) / fraction : NAN;
  std::string line = fmt::format("{}  {}/{}  {:3.0f}%  elapsed {}", label_, done_, total_, 100.0 * fraction,
                                 format_duration(elapsed));
  if (!final_line) line += fmt::format("  ETA {}", format_duration(eta));
  if (!detail_.empty() && !final_line) line += fmt::format("  {}", detail_);
  if (interactive_) {
    fmt::print(stderr, "\r\033[K{}{}", line, final_line ? "\n" : "");
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
}

}  // namespace microscale

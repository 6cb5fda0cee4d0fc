#pragma once
// Progress of long work on stderr: "label  37/120  31%  elapsed 12s  ETA 21s". On a terminal (or with
// MICROSCALE_PROGRESS=1) the line is redrawn in place at most four times a second; in a log a new line
// is written every 5 seconds, so CI output stays short. finish() prints the final line unless quiet.
#include <chrono>
#include <cstdint>
#include <string>

namespace microscale {

class Progress {
 public:
  Progress(std::string label, std::int64_t total, bool quiet = false);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::int64_t steps = 1, std::string_view detail = {});
  void finish();
  double elapsed_seconds() const;

 private:
  void draw(bool final_line);
  std::string label_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  bool quiet_;
  bool interactive_;
  bool finished_ = false;
  std::string detail_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1m05s", "12.3s"
std::string format_duration(double seconds);

}  // namespace microscale

#include "microscale/core/log.hpp"

#include <cstdio>
#include <mutex>

namespace microscale::log {
namespace {
std::mutex sink_mutex;
Sink current_sink;
}  // namespace

Sink set_sink(Sink sink) {
  std::lock_guard lock(sink_mutex);
  Sink previous = std::move(current_sink);
  current_sink = std::move(sink);
  return previous;
}

void emit(Level level, std::string_view message) {
  std::lock_guard lock(sink_mutex);
  if (current_sink) {
    current_sink(level, message);
    return;
  }
  fmt::print(stderr, "{}{}\n", level == Level::warning ? "warning: " : "", message);
}

}  // namespace microscale::log

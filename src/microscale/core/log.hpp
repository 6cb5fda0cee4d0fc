#pragma once
// Warnings and information go through one replaceable sink (stderr by default), so tests can capture
// what the library says and the CLI can decide where it goes.
#include <functional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace microscale::log {

enum class Level { info, warning };
using Sink = std::function<void(Level, std::string_view)>;

// Replaces the sink; returns the previous one (restore it when done). An empty sink restores stderr.
Sink set_sink(Sink sink);
void emit(Level level, std::string_view message);

template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  emit(Level::info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  emit(Level::warning, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace microscale::log

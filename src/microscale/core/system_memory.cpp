#include "microscale/core/system_memory.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string>

namespace microscale {
namespace {

std::optional<std::string> read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\n");
  return s.substr(first, last - first + 1);
}

std::optional<std::uint64_t> parse_count(std::string_view s) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

// Inside a container with a cgroup v2 namespace, /sys/fs/cgroup is the container's own cgroup; on a
// host it is the root cgroup, which has no memory.max, so the machine's figure stands.
std::optional<std::uint64_t> cgroup_headroom() {
  const auto limit = read_text("/sys/fs/cgroup/memory.max");
  const auto usage = read_text("/sys/fs/cgroup/memory.current");
  if (!limit || !usage) return std::nullopt;
  return parse_cgroup_headroom(*limit, *usage);
}

}  // namespace

std::optional<std::uint64_t> parse_mem_available(std::string_view meminfo) {
  constexpr std::string_view key = "MemAvailable:";
  const auto at = meminfo.find(key);
  if (at == std::string_view::npos || (at > 0 && meminfo[at - 1] != '\n')) return std::nullopt;
  std::string_view rest = meminfo.substr(at + key.size());
  rest = rest.substr(0, rest.find('\n'));
  rest = trim(rest);
  if (rest.size() < 3 || rest.substr(rest.size() - 3) != " kB") return std::nullopt;
  const auto kib = parse_count(trim(rest.substr(0, rest.size() - 3)));
  if (!kib) return std::nullopt;
  return *kib * 1024;
}

std::optional<std::uint64_t> parse_cgroup_headroom(std::string_view limit, std::string_view usage) {
  limit = trim(limit);
  if (limit == "max") return std::nullopt;  // no limit of its own
  const auto max = parse_count(limit);
  const auto current = parse_count(trim(usage));
  if (!max || !current) return std::nullopt;
  return *max > *current ? *max - *current : 0;
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::optional<std::uint64_t> available;
  if (const auto meminfo = read_text("/proc/meminfo")) available = parse_mem_available(*meminfo);
  if (const auto headroom = cgroup_headroom()) available = available ? std::min(*available, *headroom) : *headroom;
  return available;
}

}  // namespace microscale

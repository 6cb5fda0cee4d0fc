#pragma once
// How much memory this process could still take: the kernel's MemAvailable estimate (free memory plus
// the page cache and slabs it can reclaim), capped by a cgroup v2 memory limit when the process runs
// under one (a container's limit is what kills it, whatever the host has). Used to decide whether a
// model fits in memory or must be streamed layer by layer.
#include <cstdint>
#include <optional>
#include <string_view>

namespace microscale {

// MemAvailable from /proc/meminfo, capped by the cgroup's memory.max - memory.current; nullopt where
// neither can be read (not Linux, or /proc not mounted).
std::optional<std::uint64_t> available_memory_bytes();

// The parsers behind it, for tests. `meminfo` is /proc/meminfo's text ("MemAvailable:  123 kB");
// `limit` is memory.max ("max" or a byte count) and `usage` memory.current.
std::optional<std::uint64_t> parse_mem_available(std::string_view meminfo);
std::optional<std::uint64_t> parse_cgroup_headroom(std::string_view limit, std::string_view usage);

}  // namespace microscale

// Small text files of the kernel (/proc, /sys/fs/cgroup) read with plain system calls: no
// iostreams, whose locale machinery would cost the daemon more resident memory than it needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ls {

// The file's contents (at most `max` bytes); empty when it cannot be read.
std::string read_text_file(const std::string& path, size_t max = 64 * 1024);
// Pieces of `text` between separators (empty pieces dropped when `skip_empty`).
std::vector<std::string_view> split(std::string_view text, char sep, bool skip_empty = true);
// The number after `key` on a "key value" line (memory.events, memory.oom_control); 0 if absent.
uint64_t keyed_number(std::string_view text, std::string_view key);
// Every whitespace-separated number in `text` (cgroup.procs).
std::vector<long long> numbers_in(std::string_view text);
bool path_exists(const std::string& path);

// What a memory cgroup directory reports, v2 (memory.current, memory.events) or v1
// (memory.usage_in_bytes, memory.oom_control): only one of each pair exists. 0 if unreadable.
uint64_t cgroup_memory_bytes(const std::string& dir);
uint64_t cgroup_oom_kills(const std::string& dir);

} // namespace ls

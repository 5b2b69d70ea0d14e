#include "util/text_file.h"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ls {

std::string read_text_file(const std::string& path, size_t max) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    while (out.size() < max) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    if (out.size() > max) out.resize(max);
    return out;
}

std::vector<std::string_view> split(std::string_view text, char sep, bool skip_empty) {
    std::vector<std::string_view> out;
    while (true) {
        size_t at = text.find(sep);
        std::string_view piece = text.substr(0, at);
        if (!piece.empty() || !skip_empty) out.push_back(piece);
        if (at == std::string_view::npos) break;
        text.remove_prefix(at + 1);
    }
    return out;
}

uint64_t keyed_number(std::string_view text, std::string_view key) {
    for (std::string_view line : split(text, '\n')) {
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
            line[key.size()] == ' ')
            return strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
    }
    return 0;
}

std::vector<long long> numbers_in(std::string_view text) {
    std::vector<long long> out;
    std::string copy(text);
    const char* p = copy.c_str();
    while (*p) {
        char* end = nullptr;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            ++p;
            continue;
        }
        out.push_back(v);
        p = end;
    }
    return out;
}

bool path_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

uint64_t cgroup_memory_bytes(const std::string& dir) {
    for (const char* f : {"/memory.current", "/memory.usage_in_bytes"}) {
        const std::string text = read_text_file(dir + f);
        if (!text.empty()) return strtoull(text.c_str(), nullptr, 10);
    }
    return 0;
}

uint64_t cgroup_oom_kills(const std::string& dir) {
    std::string text = read_text_file(dir + "/memory.events");
    if (text.empty()) text = read_text_file(dir + "/memory.oom_control");
    return keyed_number(text, "oom_kill");
}

} // namespace ls

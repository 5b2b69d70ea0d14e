// A list of POSIX extended regular expressions compiled once (upstream.ignorePaths).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace ls {

class RegexList {
public:
    // Fails on the first pattern that does not compile, with regcomp's reason.
    static Result<std::shared_ptr<const RegexList>> compile(const std::vector<std::string>& patterns);
    ~RegexList();
    RegexList(const RegexList&) = delete;
    RegexList& operator=(const RegexList&) = delete;

    // True when any pattern matches somewhere in `text` (unanchored, as Go's MatchString).
    bool matches(std::string_view text) const;
    const std::vector<std::string>& patterns() const { return patterns_; }

private:
    RegexList() = default;
    std::vector<std::string> patterns_;
    std::vector<void*> compiled_; // regex_t*, kept out of the header
};

} // namespace ls

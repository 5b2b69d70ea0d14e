// POSIX-shell-like word splitting for `cmd` (quotes and backslashes, no expansion), as the
// original does with shlex; plus the stripping of `#` comment lines.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace ls::config {

// Removes lines whose first non-blank character is '#', and joins `\`-newline continuations.
std::string strip_comment_lines(std::string_view text);

// Splits like a POSIX shell splits words: blanks separate, '...' is literal, "..." allows
// \" \\ \$ \` and \newline escapes, a backslash outside quotes escapes the next character.
// Error on an unterminated quote or a trailing backslash.
Result<std::vector<std::string>> split_words(std::string_view text);

} // namespace ls::config

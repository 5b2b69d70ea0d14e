// The merge of per-file YAML trees into one (--config-dir): internal to src/config.
#pragma once

#include <vector>

#include "config/yaml_tree.h"
#include "util/result.h"

namespace ls::config::detail {

// One tree of every file's nodes (re-indexed, each keeping its file index) whose root merges
// the files' roots in order, with the original's rules (sources.cc). Empty files (no
// document, or a null one) are skipped; all empty gives root -1. Errors are
// "file:line:col: message" at the offending node in its own file.
Result<Tree> merge_trees(const std::vector<Tree>& trees);

} // namespace ls::config::detail

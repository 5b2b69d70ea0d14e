// The YAML document as a tree of nodes with their positions (libyaml's document API): the
// loader reads typed values from it and reports errors as file:line:col.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "util/result.h"

namespace ls::config::detail {

/* ---- YAML node tree ------------------------------------------------------------------------
 * libyaml's document API resolves anchors and aliases into shared node ids; we copy its flat
 * node table (ids stay shared, so an alias bomb costs nothing) and keep each node's start mark.
 */

struct Node {
    enum class Kind { Scalar, Sequence, Mapping } kind = Kind::Scalar;
    std::string value; // scalars
    bool plain = true; // a plain (unquoted, non-block) scalar: may be null
    SourcePos pos;
    int file = 0;                           // index in Tree::files: where the node was written
    std::vector<int> items;                 // sequences: node indices
    std::vector<std::pair<int, int>> pairs; // mappings: (key, value) node indices
};

struct Tree {
    std::vector<Node> nodes;
    int root = -1;                  // -1: empty document
    std::vector<std::string> files; // the source files (one, or several once merged)
};

using Pair = std::pair<const Node*, const Node*>; // key, value

Result<Tree> parse_yaml(const std::string& text, const std::string& file);
Error diag_error(const std::string& file, SourcePos pos, std::string message);
// A plain scalar that YAML reads as null: "", ~, null.
bool is_null(const Node& n);

} // namespace ls::config::detail

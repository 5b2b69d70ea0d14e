#include "config/config.h"

#include <cjson/cJSON.h>
#include <regex.h>
#include <yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "config/macros.h"
#include "config/shell_words.h"
#include "util/json.h"

namespace ls::config {

std::string Diagnostic::render() const {
    if (pos.line <= 0) return file + ": " + message;
    return file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col) + ": " + message;
}

const ModelConfig* Config::resolve(const std::string& name) const {
    if (auto it = models.find(name); it != models.end()) return &it->second;
    if (auto it = aliases.find(name); it != aliases.end()) {
        if (auto m = models.find(it->second); m != models.end()) return &m->second;
    }
    return nullptr;
}

const GroupConfig* Config::group_of(const std::string& model_id) const {
    for (const auto& g : groups)
        for (const auto& m : g.members)
            if (m == model_id) return &g;
    return nullptr;
}

namespace {

/* ---- YAML node tree ------------------------------------------------------------------------
 * libyaml's document API resolves anchors and aliases into shared node ids; we copy its flat
 * node table (ids stay shared, so an alias bomb costs nothing) and keep each node's start mark.
 */

struct Node {
    enum class Kind { Scalar, Sequence, Mapping } kind = Kind::Scalar;
    std::string value; // scalars
    bool plain = true; // a plain (unquoted, non-block) scalar: may be null
    SourcePos pos;
    std::vector<int> items;                 // sequences: node indices
    std::vector<std::pair<int, int>> pairs; // mappings: (key, value) node indices
};

struct Tree {
    std::vector<Node> nodes;
    int root = -1; // -1: empty document
};

SourcePos to_pos(const yaml_mark_t& mark) {
    return SourcePos{static_cast<int>(mark.line) + 1, static_cast<int>(mark.column) + 1};
}

/* Line/column of a byte offset (libyaml reader errors only give an offset). */
SourcePos pos_of_offset(std::string_view text, size_t offset) {
    SourcePos p{1, 1};
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++p.line;
            p.col = 1;
        } else {
            ++p.col;
        }
    }
    return p;
}

Error diag_error(const std::string& file, SourcePos pos, std::string message) {
    return make_error(Diagnostic{file, pos, std::move(message)}.render());
}

Result<Tree> parse_yaml(const std::string& text, const std::string& file) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return make_error(file + ": cannot initialize parser");
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());

    auto parser_error = [&]() {
        std::string problem = parser.problem ? parser.problem : "invalid YAML";
        SourcePos pos = parser.error == YAML_READER_ERROR
                            ? pos_of_offset(text, parser.problem_offset)
                            : to_pos(parser.problem_mark);
        Error e = diag_error(file, pos, problem);
        yaml_parser_delete(&parser);
        return e;
    };

    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) return parser_error();

    Tree tree;
    yaml_node_t* root = yaml_document_get_root_node(&doc);
    if (root) {
        tree.root = 0; // the root is node 1 in libyaml's 1-based table
        for (yaml_node_t* n = doc.nodes.start; n < doc.nodes.top; ++n) {
            Node node;
            node.pos = to_pos(n->start_mark);
            switch (n->type) {
            case YAML_SCALAR_NODE:
                node.kind = Node::Kind::Scalar;
                node.value.assign(reinterpret_cast<const char*>(n->data.scalar.value),
                                  n->data.scalar.length);
                node.plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                break;
            case YAML_SEQUENCE_NODE:
                node.kind = Node::Kind::Sequence;
                for (yaml_node_item_t* it = n->data.sequence.items.start;
                     it < n->data.sequence.items.top; ++it)
                    node.items.push_back(*it - 1);
                break;
            case YAML_MAPPING_NODE:
                node.kind = Node::Kind::Mapping;
                for (yaml_node_pair_t* p = n->data.mapping.pairs.start;
                     p < n->data.mapping.pairs.top; ++p)
                    node.pairs.emplace_back(p->key - 1, p->value - 1);
                break;
            default:
                break;
            }
            tree.nodes.push_back(std::move(node));
        }
        tree.root = static_cast<int>(root - doc.nodes.start);
    }
    yaml_document_delete(&doc);

    /* A second document is not something the original reads either: refuse it. */
    if (root) {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) return parser_error();
        bool more = yaml_document_get_root_node(&next) != nullptr;
        SourcePos pos = to_pos(next.start_mark);
        yaml_document_delete(&next);
        if (more) {
            yaml_parser_delete(&parser);
            return diag_error(file, pos, "multiple YAML documents are not supported");
        }
    }
    yaml_parser_delete(&parser);
    return tree;
}

/* ---- decoding ------------------------------------------------------------------------------ */

using Pair = std::pair<const Node*, const Node*>; // key, value

const std::set<std::string_view> kTopUnsupported = {
    "logTimeFormat", "captureBuffer", "upstream", "routing", "matrix",      "peers",
    "profiles",      "selectors",     "store",    "ui",      "performance", "logRequests"};
const std::set<std::string_view> kModelUnsupported = {"compat"};

bool is_null(const Node& n) {
    return n.kind == Node::Kind::Scalar && n.plain &&
           (n.value.empty() || n.value == "~" || n.value == "null" || n.value == "Null" ||
            n.value == "NULL");
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

/* ---- typing of plain scalars, as go-yaml resolves them (YAML 1.1 booleans included) ---- */

std::optional<bool> yaml_bool(std::string_view t) {
    if (iequals(t, "true") || iequals(t, "yes") || iequals(t, "on")) return true;
    if (iequals(t, "false") || iequals(t, "no") || iequals(t, "off")) return false;
    return std::nullopt;
}

/* An integer as Go's strconv.ParseInt(text, 0, 64) (or ParseUint) reads it after go-yaml has
 * removed the underscores: decimal, 0x hex, 0o/0 octal, 0b binary, optional sign. Returns its
 * decimal text; nullopt when it is not an integer or does not fit in 64 bits. */
std::optional<std::string> yaml_int(std::string_view t) {
    std::string p;
    for (char c : t)
        if (c != '_') p += c;
    size_t i = 0;
    bool neg = false;
    bool sign = false;
    if (i < p.size() && (p[i] == '+' || p[i] == '-')) {
        neg = p[i] == '-';
        sign = true;
        ++i;
    }
    unsigned base = 10;
    if (i + 1 < p.size() && p[i] == '0') {
        char x = p[i + 1];
        if (x == 'x' || x == 'X') {
            base = 16;
            i += 2;
        } else if (x == 'o' || x == 'O') {
            base = 8;
            i += 2;
        } else if (x == 'b' || x == 'B') {
            base = 2;
            i += 2;
        } else {
            base = 8;
            ++i;
        }
    }
    if (i >= p.size()) return std::nullopt;
    unsigned long long n = 0;
    const unsigned long long kMax = std::numeric_limits<unsigned long long>::max();
    for (; i < p.size(); ++i) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = static_cast<unsigned>(c - 'A' + 10);
        else
            return std::nullopt;
        if (d >= base) return std::nullopt;
        if (n > (kMax - d) / base) return std::nullopt; // beyond 64 bits: maybe a float
        n = n * base + d;
    }
    const unsigned long long kMaxSigned = std::numeric_limits<long long>::max();
    if (neg) {
        if (n > kMaxSigned + 1) return std::nullopt;
        return n == 0 ? std::string("0") : "-" + std::to_string(n);
    }
    if (sign && n > kMaxSigned) return std::nullopt; // ParseUint takes no sign
    return std::to_string(n);
}

/* A float as go-yaml reads it: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ after
 * removing underscores, finite. (.inf and .nan have no JSON form and stay strings.) */
std::optional<double> yaml_float(std::string_view t) {
    std::string p;
    for (char c : t)
        if (c != '_') p += c;
    size_t i = 0;
    auto digits = [&]() {
        size_t start = i;
        while (i < p.size() && p[i] >= '0' && p[i] <= '9') ++i;
        return i - start;
    };
    if (i < p.size() && (p[i] == '+' || p[i] == '-')) ++i;
    if (i < p.size() && p[i] == '.') {
        ++i;
        if (digits() == 0) return std::nullopt;
    } else {
        if (digits() == 0) return std::nullopt;
        if (i < p.size() && p[i] == '.') {
            ++i;
            digits();
        }
    }
    if (i < p.size() && (p[i] == 'e' || p[i] == 'E')) {
        ++i;
        if (i < p.size() && (p[i] == '+' || p[i] == '-')) ++i;
        if (digits() == 0) return std::nullopt;
    }
    if (i != p.size()) return std::nullopt;
    double d = std::strtod(p.c_str(), nullptr);
    if (!std::isfinite(d)) return std::nullopt;
    return d;
}

using Json = JsonPtr;

/* A number or boolean literal as JSON; null when the text is neither. */
Json typed_literal(const std::string& text) {
    if (auto b = yaml_bool(text)) return Json(cJSON_CreateBool(*b));
    // Integers keep their exact digits (a double would round beyond 2^53).
    if (auto n = yaml_int(text)) return Json(cJSON_CreateRaw(n->c_str()));
    if (auto d = yaml_float(text)) return Json(cJSON_CreateNumber(*d));
    return nullptr;
}

std::string json_text(const cJSON* j) {
    return json_print(j).value_or("");
}

ParamSet param_set(const cJSON* object) {
    ParamSet set;
    set.json = json_text(object);
    for (const cJSON* item = object->child; item; item = item->next)
        set.members.push_back({item->string, json_text(item)});
    return set;
}

/* `stripParams`: comma-separated, blanks trimmed, empties, duplicates and "model" dropped. */
std::vector<std::string> split_strip_params(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        std::string item = text.substr(start, comma - start);
        const char* blanks = " \t\n\r\v\f";
        size_t b = item.find_first_not_of(blanks);
        size_t e = item.find_last_not_of(blanks);
        item = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
        if (!item.empty() && item != "model" &&
            std::find(out.begin(), out.end(), item) == out.end())
            out.push_back(item);
        start = comma + 1;
    }
    return out;
}

bool contains_port(const std::vector<std::string>& words) {
    for (const auto& w : words)
        if (w.find("${PORT}") != std::string::npos) return true;
    return false;
}

/* Joins argv for display, single-quoting words that would not split back the same. */
std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += ' ';
        if (!w.empty() && w.find_first_of(" \t\n\r\v\f'\"\\") == std::string::npos) {
            out += w;
            continue;
        }
        out += '\'';
        for (char c : w) {
            if (c == '\'')
                out += "'\\''";
            else
                out += c;
        }
        out += '\'';
    }
    return out;
}

/* "24G", "512M", "1073741824", "infinity" (= no limit): 1024-based suffixes K M G T. */
bool parse_size(const std::string& text, uint64_t& out) {
    if (text == "infinity") {
        out = 0;
        return true;
    }
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || errno == ERANGE || v <= 0) return false;
    std::string suffix(end);
    if (suffix.size() == 2 && (suffix[1] == 'B' || suffix[1] == 'b')) suffix.pop_back();
    double mult = 1;
    if (suffix.empty() || suffix == "B")
        mult = 1;
    else if (suffix == "K" || suffix == "k")
        mult = 1024.0;
    else if (suffix == "M" || suffix == "m")
        mult = 1024.0 * 1024;
    else if (suffix == "G" || suffix == "g")
        mult = 1024.0 * 1024 * 1024;
    else if (suffix == "T" || suffix == "t")
        mult = 1024.0 * 1024 * 1024 * 1024;
    else
        return false;
    out = static_cast<uint64_t>(v * mult);
    return out > 0;
}

/* "0-7,16": comma-separated CPU numbers and ranges. */
bool valid_cpu_list(const std::string& text) {
    if (text.empty()) return false;
    size_t i = 0;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
        if (i == start) return false;
        if (i < text.size() && text[i] == '-') {
            ++i;
            size_t s2 = i;
            while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
            if (i == s2) return false;
        }
        if (i < text.size()) {
            if (text[i] != ',') return false;
            ++i;
            if (i == text.size()) return false;
        }
    }
    return true;
}

bool parse_backend(const std::string& text, Backend& out) {
    if (text == "auto")
        out = Backend::Auto;
    else if (text == "scope")
        out = Backend::Scope;
    else if (text == "fork")
        out = Backend::Fork;
    else
        return false;
    return true;
}

/* Where a value is being decoded: prefix for semantic errors, macros for expansion. */
struct Scope {
    std::string prefix;                // e.g. "model 'm': " or ""
    const MacroContext* ctx = nullptr; // null: scalars are not expanded
};

class Loader {
public:
    Loader(const Tree& tree, std::string file) : t_(tree), file_(std::move(file)) {}

    Result<Config> run();

private:
    const Tree& t_;
    std::string file_;
    Config cfg_;
    MacroSet global_macros_;

    const Node& node(int i) const { return t_.nodes[static_cast<size_t>(i)]; }
    Error err(const Node& n, std::string msg) const { return diag_error(file_, n.pos, msg); }
    Error err(SourcePos pos, std::string msg) const { return diag_error(file_, pos, msg); }
    void warn(const Node& n, std::string msg) {
        cfg_.warnings.push_back(Diagnostic{file_, n.pos, std::move(msg)});
    }

    Result<std::vector<Pair>> pairs_of(const Node& map, const std::string& what, int depth = 0);
    Result<void> check_duplicate_keys();

    Result<std::string> scalar(const Node& v, const std::string& key, const Scope& scope,
                               const char* type, bool allow_pid = false);
    Result<std::string> get_string(const Node& v, const std::string& key, const Scope& scope,
                                   bool allow_pid = false) {
        return scalar(v, key, scope, "a string", allow_pid);
    }
    Result<long long> get_int(const Node& v, const std::string& key, const Scope& scope,
                              long long min = std::numeric_limits<int>::min(),
                              long long max = std::numeric_limits<int>::max());
    Result<double> get_double(const Node& v, const std::string& key, const Scope& scope);
    Result<bool> get_bool(const Node& v, const std::string& key, const Scope& scope);
    Result<std::vector<const Node*>> get_list(const Node& v, const std::string& key);

    Result<void> decode_macros(const Node& v, MacroSet& target, const MacroContext& ctx,
                               const std::string& prefix);
    Result<void> decode_server(const Node& v, const Scope& scope);
    Result<void> decode_model(const Node& key, const Node& v, ModelConfig& m,
                              std::vector<std::pair<std::string, const Node*>>& alias_nodes);
    Result<void> decode_command(const Node& v, const std::string& key, const Scope& scope,
                                bool allow_pid, std::vector<std::string>& out);
    Result<void> decode_groups(const Node& v);

    // Any YAML value as JSON (metadata, setParams values); `budget` caps the values emitted,
    // since anchors may be referenced many times (reported at `root`, the value of the key).
    Result<Json> to_json(const Node& v, const std::string& key, const Scope& scope, int depth,
                         size_t& budget, const Node& root);
    Result<Json> scalar_json(const Node& v, const std::string& key, const Scope& scope);
    // A mapping of request parameters as a JSON object; `model` may not be set.
    Result<Json> params_json(const Node& v, const std::string& key, const Scope& scope);
    Result<void> decode_capabilities(const Node& v, const Scope& scope, Capabilities& c);
    Result<void> decode_filters(const Node& v, const Scope& scope, ModelConfig& m,
                                std::string& strip_params, std::string& legacy_strip_params,
                                std::vector<std::pair<std::string, const Node*>>& by_id_keys);
    Result<void> decode_timeouts(const Node& v, const Scope& scope, UpstreamTimeouts& t);
    Result<void> decode_hooks(const Node& v, const Scope& scope,
                              std::vector<std::pair<std::string, const Node*>>& preload);
};

/* The pairs of a mapping, with YAML merge keys (`<<: *base` or `<<: [*a, *b]`) resolved as
 * go-yaml does: explicit keys win, then earlier merged mappings win over later ones. */
Result<std::vector<Pair>> Loader::pairs_of(const Node& map, const std::string& what, int depth) {
    if (map.kind != Node::Kind::Mapping) return err(map, "expected a mapping for '" + what + "'");
    if (depth > 32) return err(map, "merge keys nested too deeply");
    std::vector<Pair> out;
    std::vector<const Node*> merges;
    for (auto [k, v] : map.pairs) {
        const Node& key = node(k);
        const Node& value = node(v);
        if (key.kind != Node::Kind::Scalar)
            return err(key, "mapping keys in '" + what + "' must be scalars");
        if (key.plain && key.value == "<<") {
            if (value.kind == Node::Kind::Sequence) {
                for (int item : value.items) merges.push_back(&node(item));
            } else {
                merges.push_back(&value);
            }
            continue;
        }
        out.emplace_back(&key, &value);
    }
    for (const Node* m : merges) {
        if (m->kind != Node::Kind::Mapping) return err(*m, "merge key '<<' needs a mapping");
        auto merged = pairs_of(*m, what, depth + 1);
        if (!merged) return merged.error();
        for (const Pair& p : merged.value()) {
            bool present = false;
            for (const Pair& q : out) present = present || q.first->value == p.first->value;
            if (!present) out.push_back(p);
        }
    }
    return out;
}

/* Every mapping in the document, used or ignored, must not repeat a key (go-yaml refuses that
 * too). Reported at the second occurrence. */
Result<void> Loader::check_duplicate_keys() {
    for (const Node& n : t_.nodes) {
        if (n.kind != Node::Kind::Mapping) continue;
        std::set<std::string> seen;
        for (auto [k, v] : n.pairs) {
            (void)v;
            const Node& key = node(k);
            if (key.kind != Node::Kind::Scalar) continue;
            if (!seen.insert(key.value).second)
                return err(key, "duplicate key '" + key.value + "'");
        }
    }
    return {};
}

Result<std::string> Loader::scalar(const Node& v, const std::string& key, const Scope& scope,
                                   const char* type, bool allow_pid) {
    if (v.kind != Node::Kind::Scalar)
        return err(v, std::string("expected ") + type + " for '" + key + "'");
    if (!scope.ctx || v.value.find("${") == std::string::npos) return v.value;
    MacroContext ctx = *scope.ctx;
    ctx.allow_pid = allow_pid;
    auto r = expand_macros(v.value, ctx);
    if (!r) return err(v, scope.prefix + key + ": " + r.error().message);
    return r;
}

Result<long long> Loader::get_int(const Node& v, const std::string& key, const Scope& scope,
                                  long long min, long long max) {
    auto s = scalar(v, key, scope, "a number");
    if (!s) return s.error();
    const std::string& text = s.value();
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end == text.c_str() || *end != '\0' || text[0] == ' ') {
        char* dend = nullptr;
        double d = std::strtod(text.c_str(), &dend);
        if (!text.empty() && *dend == '\0' && std::isfinite(d) && text[0] != ' ')
            return err(v, "expected an integer for '" + key + "'");
        return err(v, "expected a number for '" + key + "'");
    }
    if (errno == ERANGE || n < min || n > max)
        return err(v, "value " + text + " is out of range for '" + key + "'");
    return n;
}

Result<double> Loader::get_double(const Node& v, const std::string& key, const Scope& scope) {
    auto s = scalar(v, key, scope, "a number");
    if (!s) return s.error();
    const std::string& text = s.value();
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    // strtod also takes "inf", "nan" and hex floats: only plain decimals are numbers here.
    if (text.empty() || *end != '\0' ||
        text.find_first_not_of("0123456789+-.eE") != std::string::npos)
        return err(v, "expected a number for '" + key + "'");
    if (!std::isfinite(d)) return err(v, "value " + text + " is out of range for '" + key + "'");
    return d;
}

Result<bool> Loader::get_bool(const Node& v, const std::string& key, const Scope& scope) {
    auto s = scalar(v, key, scope, "a boolean");
    if (!s) return s.error();
    if (auto b = yaml_bool(s.value())) return *b;
    return err(v, "expected a boolean for '" + key + "'");
}

Result<std::vector<const Node*>> Loader::get_list(const Node& v, const std::string& key) {
    if (v.kind != Node::Kind::Sequence) return err(v, "expected a list for '" + key + "'");
    std::vector<const Node*> out;
    for (int i : v.items) out.push_back(&node(i));
    return out;
}

Result<void> Loader::decode_macros(const Node& v, MacroSet& target, const MacroContext& ctx,
                                   const std::string& prefix) {
    auto pairs = pairs_of(v, "macros");
    if (!pairs) return pairs.error();
    for (auto [key, value] : pairs.value()) {
        if (value->kind != Node::Kind::Scalar)
            return err(*value, prefix + "macro '" + key->value + "' must have a scalar value");
        std::string text = is_null(*value) ? std::string() : value->value;
        auto r = declare_macro(target, key->value, text, ctx);
        if (!r) {
            // Name problems point at the key, reference problems at the value.
            const std::string& msg = r.error().message;
            bool name_problem = msg.rfind("invalid macro name", 0) == 0 ||
                                msg.rfind("macro name", 0) == 0 ||
                                msg.find("is already defined") != std::string::npos;
            return err(name_problem ? *key : *value, prefix + msg);
        }
    }
    return {};
}

Result<void> Loader::decode_server(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "server");
    if (!pairs) return pairs.error();
    ServerConfig& s = cfg_.server;
    const long long kMaxSize = std::numeric_limits<long long>::max();
    for (auto [key, value] : pairs.value()) {
        const std::string& k = key->value;
        bool is_size = k == "maxHeaderBytes" || k == "maxBodyBytes" || k == "bodyMemoryBytes";
        bool is_time = k == "headerTimeout" || k == "bodyTimeout" || k == "idleTimeout" ||
                       k == "shutdownTimeout";
        if (!is_size && !is_time && k != "maxConnections" && k != "spoolDir") {
            warn(*key, "unknown key '" + k + "'");
            continue;
        }
        if (is_null(*value)) continue;
        if (k == "spoolDir") {
            auto dir = get_string(*value, k, scope);
            if (!dir) return dir.error();
            if (dir.value().empty() || dir.value()[0] != '/')
                return err(*value, "'server.spoolDir' must be an absolute path");
            if (dir.value().find('\0') != std::string::npos)
                return err(*value, "'server.spoolDir' contains a NUL character");
            s.spool_dir = dir.value();
        } else if (is_size || k == "maxConnections") {
            auto n = get_int(*value, k, scope, std::numeric_limits<long long>::min(),
                             k == "maxConnections" ? std::numeric_limits<int>::max() : kMaxSize);
            if (!n) return n.error();
            if (n.value() <= 0) return err(*value, "'server." + k + "' must be positive");
            if (k == "maxHeaderBytes")
                s.max_header_bytes = static_cast<size_t>(n.value());
            else if (k == "maxBodyBytes")
                s.max_body_bytes = static_cast<size_t>(n.value());
            else if (k == "bodyMemoryBytes")
                s.body_memory_bytes = static_cast<size_t>(n.value());
            else
                s.max_connections = static_cast<int>(n.value());
        } else {
            auto d = get_double(*value, k, scope);
            if (!d) return d.error();
            if (d.value() <= 0) return err(*value, "'server." + k + "' must be positive");
            if (k == "headerTimeout")
                s.header_timeout_s = d.value();
            else if (k == "bodyTimeout")
                s.body_timeout_s = d.value();
            else if (k == "idleTimeout")
                s.idle_timeout_s = d.value();
            else
                s.shutdown_timeout_s = d.value();
        }
    }
    return {};
}

/* cmd / cmdStop: comment lines out, macros in, then words. */
Result<void> Loader::decode_command(const Node& v, const std::string& key, const Scope& scope,
                                    bool allow_pid, std::vector<std::string>& out) {
    if (v.kind != Node::Kind::Scalar) return err(v, "expected a string for '" + key + "'");
    std::string text = strip_comment_lines(v.value);
    MacroContext ctx = *scope.ctx;
    ctx.allow_pid = allow_pid;
    auto expanded = expand_macros(text, ctx);
    if (!expanded) return err(v, scope.prefix + key + ": " + expanded.error().message);
    if (expanded.value().find('\0') != std::string::npos)
        return err(v, scope.prefix + key + ": contains a NUL character");
    auto words = split_words(expanded.value());
    if (!words) return err(v, scope.prefix + key + ": " + words.error().message);
    out = std::move(words.value());
    return {};
}

/* ---- JSON-valued keys ---------------------------------------------------------------------- */

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxJsonValues = 100000;

/* Plain scalars are typed like go-yaml types them; quoted ones are strings. Macros expand in
 * every string, and a plain scalar that is exactly one macro reference keeps the type of its
 * expansion when that is a number or a boolean ("a whole-value macro keeps its type"). */
Result<Json> Loader::scalar_json(const Node& v, const std::string& key, const Scope& scope) {
    std::string text = v.value;
    if (scope.ctx && text.find("${") != std::string::npos) {
        auto s = scalar(v, key, scope, "a string");
        if (!s) return s.error();
        if (v.plain && is_single_reference(v.value))
            if (Json typed = typed_literal(s.value())) return typed;
        text = std::move(s.value());
    } else if (v.plain) {
        if (is_null(v)) return Json(cJSON_CreateNull());
        if (Json typed = typed_literal(text)) return typed;
    }
    if (text.find('\0') != std::string::npos)
        return err(v, scope.prefix + key + ": a string contains a NUL character");
    return Json(cJSON_CreateString(text.c_str()));
}

Result<Json> Loader::to_json(const Node& v, const std::string& key, const Scope& scope, int depth,
                             size_t& budget, const Node& root) {
    if (depth > kMaxJsonDepth) return err(v, scope.prefix + key + ": nested too deeply");
    if (budget == 0) return err(root, scope.prefix + key + ": too many values");
    --budget;
    if (v.kind == Node::Kind::Scalar) return scalar_json(v, key, scope);
    if (v.kind == Node::Kind::Sequence) {
        Json arr(cJSON_CreateArray());
        for (int i : v.items) {
            auto item = to_json(node(i), key, scope, depth + 1, budget, root);
            if (!item) return item.error();
            cJSON_AddItemToArray(arr.get(), item.value().release());
        }
        return arr;
    }
    auto pairs = pairs_of(v, key);
    if (!pairs) return pairs.error();
    Json obj(cJSON_CreateObject());
    for (auto [k, value] : pairs.value()) {
        auto item = to_json(*value, key, scope, depth + 1, budget, root);
        if (!item) return item.error();
        if (k->value.find('\0') != std::string::npos)
            return err(*k, scope.prefix + key + ": a key contains a NUL character");
        cJSON_AddItemToObject(obj.get(), k->value.c_str(), item.value().release());
    }
    return obj;
}

Result<Json> Loader::params_json(const Node& v, const std::string& key, const Scope& scope) {
    auto pairs = pairs_of(v, key);
    if (!pairs) return pairs.error();
    // "filters.setParamsByID.x" -> "filters.setParamsByID" for the message.
    std::string rule = key.rfind("filters.setParamsByID", 0) == 0 ? "filters.setParamsByID" : key;
    Json obj(cJSON_CreateObject());
    size_t budget = kMaxJsonValues;
    for (auto [k, value] : pairs.value()) {
        if (k->value == "model") return err(*k, scope.prefix + rule + " may not set 'model'");
        auto item = to_json(*value, key, scope, 1, budget, v);
        if (!item) return item.error();
        if (k->value.find('\0') != std::string::npos)
            return err(*k, scope.prefix + key + ": a key contains a NUL character");
        cJSON_AddItemToObject(obj.get(), k->value.c_str(), item.value().release());
    }
    return obj;
}

Result<void> Loader::decode_capabilities(const Node& v, const Scope& scope, Capabilities& c) {
    auto pairs = pairs_of(v, "capabilities");
    if (!pairs) return pairs.error();
    c.set = true;
    for (auto [kn, value] : pairs.value()) {
        const std::string& k = kn->value;
        const std::string key = "capabilities." + k;
        if (k != "in" && k != "out" && k != "tools" && k != "reranker" && k != "context") {
            warn(*kn, "unknown key '" + k + "'");
            continue;
        }
        if (is_null(*value)) continue;
        if (k == "in" || k == "out") {
            auto items = get_list(*value, key);
            if (!items) return items.error();
            std::vector<std::string>& list = k == "in" ? c.in : c.out;
            for (const Node* item : items.value()) {
                auto s = get_string(*item, key, scope);
                if (!s) return s.error();
                const std::string& mod = s.value();
                if (mod != "text" && mod != "audio" && mod != "image")
                    return err(*item, scope.prefix + key + ": unknown modality '" + mod +
                                          "' (expected text, audio or image)");
                if (std::find(list.begin(), list.end(), mod) == list.end()) list.push_back(mod);
            }
        } else if (k == "context") {
            auto n = get_int(*value, key, scope, std::numeric_limits<long long>::min(),
                             std::numeric_limits<long long>::max());
            if (!n) return n.error();
            if (n.value() < 0) return err(*value, scope.prefix + key + " must be >= 0");
            c.context = n.value();
        } else {
            auto b = get_bool(*value, key, scope);
            if (!b) return b.error();
            (k == "tools" ? c.tools : c.reranker) = b.value();
        }
    }
    return {};
}

Result<void> Loader::decode_filters(const Node& v, const Scope& scope, ModelConfig& m,
                                    std::string& strip_params, std::string& legacy_strip_params,
                                    std::vector<std::pair<std::string, const Node*>>& by_id_keys) {
    auto pairs = pairs_of(v, "filters");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        const std::string& k = kn->value;
        const std::string key = "filters." + k;
        if (k != "stripParams" && k != "strip_params" && k != "setParams" && k != "setParamsByID") {
            warn(*kn, "unknown key '" + k + "'");
            continue;
        }
        if (is_null(*value)) continue;
        if (k == "stripParams" || k == "strip_params") {
            auto s = get_string(*value, key, scope);
            if (!s) return s.error();
            (k == "stripParams" ? strip_params : legacy_strip_params) = s.value();
        } else if (k == "setParams") {
            auto obj = params_json(*value, key, scope);
            if (!obj) return obj.error();
            if (cJSON_GetArraySize(obj.value().get()) > 0)
                m.filters.set_params = param_set(obj.value().get());
        } else {
            auto by_id = pairs_of(*value, key);
            if (!by_id) return by_id.error();
            for (auto [idn, params] : by_id.value()) {
                auto name = get_string(*idn, key, scope); // macros are allowed in these keys
                if (!name) return name.error();
                const std::string& id = name.value();
                if (id.empty()) return err(*idn, scope.prefix + key + ": empty key");
                if (m.filters.set_params_by_id.count(id))
                    return err(*idn, scope.prefix + key + ": duplicate key '" + id + "'");
                ParamSet set{"{}", {}};
                if (!is_null(*params)) {
                    auto obj = params_json(*params, key + "." + id, scope);
                    if (!obj) return obj.error();
                    set = param_set(obj.value().get());
                }
                m.filters.set_params_by_id.emplace(id, std::move(set));
                by_id_keys.emplace_back(id, idn);
            }
        }
    }
    return {};
}

Result<void> Loader::decode_timeouts(const Node& v, const Scope& scope, UpstreamTimeouts& t) {
    auto pairs = pairs_of(v, "timeouts");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        const std::string& k = kn->value;
        const std::string key = "timeouts." + k;
        if (k == "keepalive" || k == "tlsHandshake" || k == "expectContinue") {
            warn(*kn, "key '" + k + "' is not supported and is ignored");
            continue;
        }
        if (k != "connect" && k != "responseHeader" && k != "idleConn") {
            warn(*kn, "unknown key '" + k + "'");
            continue;
        }
        if (is_null(*value)) continue;
        auto d = get_double(*value, key, scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*value, scope.prefix + key + " must be >= 0");
        if (k == "connect")
            t.connect_s = d.value();
        else if (k == "responseHeader")
            t.response_header_s = d.value();
        else
            t.idle_conn_s = d.value();
    }
    return {};
}

/* `hooks.on_startup.preload`: the names, resolved once the models are known. */
Result<void> Loader::decode_hooks(const Node& v, const Scope& scope,
                                  std::vector<std::pair<std::string, const Node*>>& preload) {
    auto hooks = pairs_of(v, "hooks");
    if (!hooks) return hooks.error();
    for (auto [kn, value] : hooks.value()) {
        if (kn->value != "on_startup") {
            warn(*kn, "unknown key '" + kn->value + "'");
            continue;
        }
        if (is_null(*value)) continue;
        auto startup = pairs_of(*value, "hooks.on_startup");
        if (!startup) return startup.error();
        for (auto [sk, sv] : startup.value()) {
            if (sk->value != "preload") {
                warn(*sk, "unknown key '" + sk->value + "'");
                continue;
            }
            if (is_null(*sv)) continue;
            const std::string key = "hooks.on_startup.preload";
            auto items = get_list(*sv, key);
            if (!items) return items.error();
            for (const Node* item : items.value()) {
                auto s = get_string(*item, key, scope);
                if (!s) return s.error();
                preload.emplace_back(s.value(), item);
            }
        }
    }
    return {};
}

Result<void> Loader::decode_model(const Node& key, const Node& v, ModelConfig& m,
                                  std::vector<std::pair<std::string, const Node*>>& alias_nodes) {
    const std::string prefix = "model '" + m.id + "': ";
    std::vector<Pair> pairs;
    if (!is_null(v)) {
        auto p = pairs_of(v, "models." + m.id);
        if (!p) return p.error();
        pairs = std::move(p.value());
    }

    // Macros first, whatever their place in the mapping: every other value may use them.
    MacroSet model_macros;
    MacroContext ctx;
    ctx.global = &global_macros_;
    ctx.model = &model_macros;
    ctx.model_id = m.id;
    for (auto [k, value] : pairs) {
        if (k->value != "macros" || is_null(*value)) continue;
        if (auto r = decode_macros(*value, model_macros, ctx, prefix); !r) return r;
    }
    Scope scope{prefix, &ctx};

    const Node* cmd_node = nullptr;
    const Node* proxy_node = nullptr;
    const Node* cmd_stop_node = nullptr;
    bool have_ttl = false;
    std::string strip_params, filters_strip_params, model_strip_params;
    std::vector<std::pair<std::string, const Node*>> by_id_keys;
    m.proxy = "http://localhost:${PORT}";
    m.ttl_s = cfg_.global_ttl_s;
    m.unload_timeout_s = cfg_.unload_timeout_s;

    for (auto [kn, value] : pairs) {
        const std::string& k = kn->value;
        if (k == "macros") continue;
        if (kModelUnsupported.count(k)) {
            warn(*kn, "key '" + k + "' is not supported yet and is ignored");
            continue;
        }
        static const std::set<std::string_view> known = {"cmd",
                                                         "cmdStop",
                                                         "proxy",
                                                         "checkEndpoint",
                                                         "ttl",
                                                         "unloadTimeout",
                                                         "env",
                                                         "aliases",
                                                         "name",
                                                         "useModelName",
                                                         "readyPattern",
                                                         "memoryMax",
                                                         "memoryHigh",
                                                         "cpuQuota",
                                                         "allowedCPUs",
                                                         "gpus",
                                                         "backend",
                                                         "description",
                                                         "unlisted",
                                                         "concurrencyLimit",
                                                         "metadata",
                                                         "capabilities",
                                                         "filters",
                                                         "timeouts",
                                                         "sendLoadingState",
                                                         "strip_params",
                                                         "upstreamConnections"};
        if (!known.count(k)) {
            warn(*kn, "unknown key '" + k + "'");
            continue;
        }
        if (is_null(*value)) continue;

        if (k == "cmd") {
            cmd_node = value;
            if (auto r = decode_command(*value, k, scope, false, m.cmd); !r) return r;
        } else if (k == "cmdStop") {
            cmd_stop_node = value;
            if (auto r = decode_command(*value, k, scope, true, m.cmd_stop); !r) return r;
        } else if (k == "proxy") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            proxy_node = value;
            m.proxy = s.value();
            if (m.proxy.rfind("https://", 0) == 0)
                return err(
                    *value,
                    prefix + "https:// upstreams are not supported (use http:// on a local port)");
            if (m.proxy.rfind("http://", 0) != 0)
                return err(*value, prefix + "proxy must start with http://");
        } else if (k == "checkEndpoint") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            if (s.value() == "none")
                m.check_endpoint.clear();
            else if (s.value().empty())
                m.check_endpoint = "/";
            else if (s.value()[0] != '/')
                return err(*value, prefix + "checkEndpoint must start with '/' or be 'none'");
            else
                m.check_endpoint = s.value();
        } else if (k == "ttl") {
            auto n = get_int(*value, k, scope);
            if (!n) return n.error();
            if (n.value() < -1)
                return err(*value, prefix + "invalid ttl " + std::to_string(n.value()) +
                                       ": must be >= 0, or -1 for globalTTL");
            have_ttl = n.value() != -1;
            if (have_ttl) m.ttl_s = static_cast<int>(n.value());
        } else if (k == "unloadTimeout") {
            auto d = get_double(*value, k, scope);
            if (!d) return d.error();
            if (d.value() < 0) return err(*value, prefix + "unloadTimeout must be >= 0");
            if (d.value() > 0) m.unload_timeout_s = d.value();
        } else if (k == "concurrencyLimit") {
            auto n = get_int(*value, k, scope);
            if (!n) return n.error();
            if (n.value() < 0) return err(*value, prefix + "concurrencyLimit must be >= 0");
            m.concurrency_limit = n.value() == 0 ? 10 : static_cast<int>(n.value());
        } else if (k == "upstreamConnections") {
            auto s = scalar(*value, k, scope, "'auto', 'unlimited' or a number");
            if (!s) return s.error();
            if (s.value() == "auto") {
                m.upstream_connections = ModelConfig::kAutoConnections;
            } else if (s.value() == "unlimited") {
                m.upstream_connections = 0;
            } else {
                auto n = get_int(*value, k, scope);
                if (!n) return n.error();
                if (n.value() < 0 || n.value() > 65535)
                    return err(*value, prefix + "upstreamConnections must be 'auto', 'unlimited', "
                                                "or a number from 0 (no cap) to 65535");
                m.upstream_connections = static_cast<int>(n.value());
            }
        } else if (k == "unlisted" || k == "sendLoadingState") {
            auto b = get_bool(*value, k, scope);
            if (!b) return b.error();
            if (k == "unlisted")
                m.unlisted = b.value();
            else
                m.send_loading_state = b.value();
        } else if (k == "metadata") {
            size_t budget = kMaxJsonValues;
            auto json = to_json(*value, k, scope, 0, budget, *value);
            if (!json) return json.error();
            m.metadata_json = json_text(json.value().get());
        } else if (k == "capabilities") {
            if (auto r = decode_capabilities(*value, scope, m.capabilities); !r) return r;
        } else if (k == "filters") {
            if (auto r = decode_filters(*value, scope, m, strip_params, filters_strip_params,
                                        by_id_keys);
                !r)
                return r;
        } else if (k == "strip_params") { // legacy spelling at the model level
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            model_strip_params = s.value();
        } else if (k == "timeouts") {
            if (auto r = decode_timeouts(*value, scope, m.timeouts); !r) return r;
        } else if (k == "memoryMax" || k == "memoryHigh") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            uint64_t bytes = 0;
            if (!parse_size(text.value(), bytes))
                return err(*value, prefix + k + " must be a size like 24G, 512M or 1073741824");
            (k == "memoryMax" ? m.limits.memory_max : m.limits.memory_high) = bytes;
        } else if (k == "cpuQuota") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            std::string t = text.value();
            if (!t.empty() && t.back() == '%') t.pop_back();
            char* end = nullptr;
            long pct = strtol(t.c_str(), &end, 10);
            if (t.empty() || *end != '\0' || pct <= 0 || pct > 100000)
                return err(*value, prefix + "cpuQuota must be a percentage like 400%");
            m.limits.cpu_quota_percent = static_cast<unsigned>(pct);
        } else if (k == "allowedCPUs") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            if (!valid_cpu_list(text.value()))
                return err(*value, prefix + "allowedCPUs must be a CPU list like 0-7,16");
            m.limits.allowed_cpus = text.value();
        } else if (k == "gpus") {
            auto items = get_list(*value, k);
            if (!items) return items.error();
            m.limits.gpus_set = true;
            for (const Node* item : items.value()) {
                auto n = get_int(*item, k, scope, 0, 255);
                if (!n) return n.error();
                m.limits.gpus.push_back(static_cast<int>(n.value()));
            }
        } else if (k == "backend") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            Backend b;
            if (!parse_backend(text.value(), b))
                return err(*value, prefix + "backend must be auto, scope or fork");
            m.backend = b;
        } else if (k == "readyPattern") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            regex_t re;
            if (regcomp(&re, s.value().c_str(), REG_EXTENDED | REG_NOSUB) != 0)
                return err(*value,
                           prefix +
                               "readyPattern is not a valid POSIX extended regular expression");
            regfree(&re);
            m.ready_pattern = s.value();
        } else if (k == "name" || k == "description" || k == "useModelName") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            if (k == "name")
                m.name = s.value();
            else if (k == "description")
                m.description = s.value();
            else
                m.use_model_name = s.value();
        } else if (k == "env") {
            auto items = get_list(*value, k);
            if (!items) return items.error();
            for (const Node* item : items.value()) {
                auto s = get_string(*item, k, scope);
                if (!s) return s.error();
                size_t eq = s.value().find('=');
                if (eq == std::string::npos || eq == 0)
                    return err(*item, prefix + "env entry '" + s.value() + "' is not NAME=value");
                if (s.value().find('\0') != std::string::npos)
                    return err(*item, prefix + "env entry contains a NUL character");
                m.env.push_back(s.value());
            }
        } else if (k == "aliases") {
            auto items = get_list(*value, k);
            if (!items) return items.error();
            for (const Node* item : items.value()) {
                auto s = get_string(*item, k, scope);
                if (!s) return s.error();
                if (s.value().empty()) return err(*item, prefix + "empty alias");
                m.aliases.push_back(s.value());
                alias_nodes.emplace_back(s.value(), item);
            }
        }
    }

    // Like the original, the legacy spellings count only when `stripParams` is empty.
    const std::string& strip = !strip_params.empty()           ? strip_params
                               : !filters_strip_params.empty() ? filters_strip_params
                                                               : model_strip_params;
    m.filters.strip_params = split_strip_params(strip);
    // setParamsByID keys other than the model's own id (and its listed aliases) are aliases;
    // their uniqueness is checked with the other aliases.
    for (const auto& [id, kn] : by_id_keys) {
        if (id == m.id || std::find(m.aliases.begin(), m.aliases.end(), id) != m.aliases.end())
            continue;
        m.aliases.push_back(id);
        alias_nodes.emplace_back(id, kn);
    }

    if (m.cmd.empty()) return err(cmd_node ? *cmd_node : key, prefix + "cmd is empty");
    bool cmd_port = contains_port(m.cmd);
    if (!cmd_port && m.proxy.find("${PORT}") != std::string::npos)
        return err(proxy_node ? *proxy_node : key, prefix + "proxy uses ${PORT} but cmd does not");
    if (!cmd_port && contains_port(m.cmd_stop))
        return err(*cmd_stop_node, prefix + "cmdStop uses ${PORT} but cmd does not");
    m.uses_port = cmd_port;
    m.cmd_text = join_words(m.cmd);
    return {};
}

Result<void> Loader::decode_groups(const Node& v) {
    auto pairs = pairs_of(v, "groups");
    if (!pairs) return pairs.error();
    std::map<std::string, std::string> group_of_model;
    for (auto [kn, value] : pairs.value()) {
        GroupConfig g;
        g.id = kn->value;
        const std::string prefix = "group '" + g.id + "': ";
        if (g.id.empty()) return err(*kn, "empty group id");
        if (g.id == "(default)") return err(*kn, "group id '(default)' is reserved");
        Scope scope{prefix, nullptr};
        std::vector<Pair> gpairs;
        if (!is_null(*value)) {
            auto p = pairs_of(*value, "groups." + g.id);
            if (!p) return p.error();
            gpairs = std::move(p.value());
        }
        for (auto [gk, gv] : gpairs) {
            const std::string& k = gk->value;
            if (k != "swap" && k != "exclusive" && k != "persistent" && k != "members") {
                warn(*gk, "unknown key '" + k + "'");
                continue;
            }
            if (is_null(*gv)) continue;
            if (k == "members") {
                auto items = get_list(*gv, k);
                if (!items) return items.error();
                for (const Node* item : items.value()) {
                    auto s = get_string(*item, k, scope);
                    if (!s) return s.error();
                    const std::string& id = s.value();
                    if (!cfg_.models.count(id))
                        return err(*item, prefix + "unknown model '" + id + "'");
                    for (const auto& existing : g.members)
                        if (existing == id)
                            return err(*item, prefix + "duplicate member '" + id + "'");
                    if (auto it = group_of_model.find(id); it != group_of_model.end())
                        return err(*item, "model '" + id + "' is in groups '" + it->second +
                                              "' and '" + g.id + "'");
                    group_of_model[id] = g.id;
                    g.members.push_back(id);
                }
            } else {
                auto b = get_bool(*gv, k, scope);
                if (!b) return b.error();
                if (k == "swap")
                    g.swap = b.value();
                else if (k == "exclusive")
                    g.exclusive = b.value();
                else
                    g.persistent = b.value();
            }
        }
        cfg_.groups.push_back(std::move(g));
    }
    return {};
}

bool has_space_or_control(const std::string& s) {
    for (unsigned char c : s)
        if (c <= 0x20 || c == 0x7f) return true;
    return false;
}

Result<Config> Loader::run() {
    if (auto r = check_duplicate_keys(); !r) return r.error();
    if (t_.root < 0 || is_null(node(t_.root))) return std::move(cfg_);
    const Node& root = node(t_.root);
    if (root.kind != Node::Kind::Mapping)
        return err(root, "the top level of the configuration must be a mapping");
    auto top = pairs_of(root, "configuration");
    if (!top) return top.error();

    // Sort the keys first: macros before anything that may use them, globals before models.
    std::map<std::string, Pair> seen;
    for (const Pair& p : top.value()) {
        const std::string& k = p.first->value;
        static const std::set<std::string_view> known = {"healthCheckTimeout",
                                                         "startPort",
                                                         "globalTTL",
                                                         "unloadTimeout",
                                                         "logLevel",
                                                         "backend",
                                                         "macros",
                                                         "models",
                                                         "groups",
                                                         "queueTimeout",
                                                         "server",
                                                         "logToStdout",
                                                         "sendLoadingState",
                                                         "includeAliasesInList",
                                                         "metricsMaxInMemory",
                                                         "apiKeys",
                                                         "hooks"};
        if (kTopUnsupported.count(k)) {
            warn(*p.first, "key '" + k + "' is not supported yet and is ignored");
        } else if (!known.count(k)) {
            warn(*p.first, "unknown key '" + k + "'");
        } else if (!is_null(*p.second)) {
            seen[k] = p;
        }
    }
    auto get = [&](const char* k) -> const Node* {
        auto it = seen.find(k);
        return it == seen.end() ? nullptr : it->second.second;
    };

    MacroContext gctx;
    gctx.global = &global_macros_;
    if (const Node* v = get("macros")) {
        if (auto r = decode_macros(*v, global_macros_, gctx, ""); !r) return r.error();
    }
    Scope scope{"", &gctx};

    if (const Node* v = get("healthCheckTimeout")) {
        auto d = get_double(*v, "healthCheckTimeout", scope);
        if (!d) return d.error();
        cfg_.health_check_timeout_s = d.value() < 15 ? 15 : d.value();
    }
    if (const Node* v = get("startPort")) {
        auto n = get_int(*v, "startPort", scope);
        if (!n) return n.error();
        if (n.value() < 1 || n.value() > 65535)
            return err(*v, "startPort must be between 1 and 65535");
        cfg_.start_port = static_cast<int>(n.value());
    }
    if (const Node* v = get("globalTTL")) {
        auto n = get_int(*v, "globalTTL", scope);
        if (!n) return n.error();
        if (n.value() < 0) return err(*v, "globalTTL must be >= 0");
        cfg_.global_ttl_s = static_cast<int>(n.value());
    }
    if (const Node* v = get("unloadTimeout")) {
        auto d = get_double(*v, "unloadTimeout", scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*v, "unloadTimeout must be >= 0");
        cfg_.unload_timeout_s = d.value() == 0 ? 10 : d.value();
    }
    if (const Node* v = get("queueTimeout")) {
        auto d = get_double(*v, "queueTimeout", scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*v, "queueTimeout must be >= 0");
        cfg_.queue_timeout_s = d.value();
    }
    if (cfg_.queue_timeout_s == 0) cfg_.queue_timeout_s = cfg_.health_check_timeout_s;
    if (const Node* v = get("logLevel")) {
        auto s = get_string(*v, "logLevel", scope);
        if (!s) return s.error();
        const std::string& l = s.value();
        if (l != "debug" && l != "info" && l != "warn" && l != "error")
            return err(*v, "logLevel must be one of debug, info, warn, error");
        cfg_.log_level = l;
    }
    if (const Node* v = get("metricsMaxInMemory")) {
        auto n = get_int(*v, "metricsMaxInMemory", scope, 0, 1000000);
        if (!n) return n.error();
        cfg_.metrics_max_in_memory = static_cast<int>(n.value());
    }
    if (const Node* v = get("backend")) {
        auto text = get_string(*v, "backend", scope);
        if (!text) return text.error();
        if (!parse_backend(text.value(), cfg_.backend))
            return err(*v, "backend must be auto, scope or fork");
    }
    if (const Node* v = get("logToStdout")) {
        auto s = get_string(*v, "logToStdout", scope);
        if (!s) return s.error();
        const std::string& l = s.value();
        if (l != "proxy" && l != "upstream" && l != "both" && l != "none")
            return err(*v, "logToStdout must be one of proxy, upstream, both, none");
        cfg_.log_to_stdout = l;
    }
    for (const char* k : {"sendLoadingState", "includeAliasesInList"}) {
        if (const Node* v = get(k)) {
            auto b = get_bool(*v, k, scope);
            if (!b) return b.error();
            (std::string_view(k) == "sendLoadingState" ? cfg_.send_loading_state
                                                       : cfg_.include_aliases_in_list) = b.value();
        }
    }
    if (const Node* v = get("apiKeys")) {
        auto items = get_list(*v, "apiKeys");
        if (!items) return items.error();
        for (const Node* item : items.value()) {
            auto s = is_null(*item) ? Result<std::string>(std::string())
                                    : get_string(*item, "apiKeys", scope);
            if (!s) return s.error();
            const std::string& key = s.value();
            if (key.empty()) return err(*item, "apiKeys: empty key");
            for (unsigned char c : key) {
                if (c == ' ' || (c >= '\t' && c <= '\r'))
                    return err(*item, "apiKeys: key contains whitespace");
                if (c < 0x20 || c == 0x7f)
                    return err(*item, "apiKeys: key contains a control character");
            }
            if (std::find(cfg_.api_keys.begin(), cfg_.api_keys.end(), key) == cfg_.api_keys.end())
                cfg_.api_keys.push_back(key);
        }
    }
    std::vector<std::pair<std::string, const Node*>> preload;
    if (const Node* v = get("hooks")) {
        if (auto r = decode_hooks(*v, scope, preload); !r) return r.error();
    }
    if (const Node* v = get("server")) {
        if (auto r = decode_server(*v, scope); !r) return r.error();
    }

    std::vector<std::pair<std::string, const Node*>> alias_nodes; // file order
    if (const Node* v = get("models")) {
        auto models = pairs_of(*v, "models");
        if (!models) return models.error();
        for (auto [kn, value] : models.value()) {
            ModelConfig m;
            m.id = kn->value;
            m.pos = kn->pos;
            if (m.id.empty()) return err(*kn, "empty model id");
            if (has_space_or_control(m.id))
                return err(*kn, "model id '" + m.id +
                                    "' must not contain whitespace or control characters");
            size_t first_alias = alias_nodes.size();
            if (auto r = decode_model(*kn, *value, m, alias_nodes); !r) return r.error();
            for (size_t i = first_alias; i < alias_nodes.size(); ++i) {
                const auto& [alias, an] = alias_nodes[i];
                if (cfg_.aliases.count(alias))
                    return err(*an, "duplicate alias '" + alias + "' found in model: " + m.id);
                cfg_.aliases[alias] = m.id;
            }
            cfg_.models.emplace(m.id, std::move(m));
        }
        for (const auto& [alias, an] : alias_nodes) {
            if (cfg_.models.count(alias))
                return err(*an, "model '" + cfg_.aliases[alias] + "': alias '" + alias +
                                    "' is also a model id");
        }
    }

    for (const auto& [name, item] : preload) {
        const ModelConfig* m = cfg_.resolve(name);
        if (!m) return err(*item, "hooks.on_startup.preload: unknown model '" + name + "'");
        if (std::find(cfg_.preload.begin(), cfg_.preload.end(), m->id) == cfg_.preload.end())
            cfg_.preload.push_back(m->id);
    }

    if (const Node* v = get("groups")) {
        if (auto r = decode_groups(*v); !r) return r.error();
    }
    GroupConfig def;
    def.id = "(default)";
    for (const auto& [id, m] : cfg_.models) {
        (void)m;
        if (!cfg_.group_of(id)) def.members.push_back(id);
    }
    if (!def.members.empty()) cfg_.groups.push_back(std::move(def));
    std::stable_sort(cfg_.warnings.begin(), cfg_.warnings.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                         return std::pair(a.pos.line, a.pos.col) < std::pair(b.pos.line, b.pos.col);
                     });
    return std::move(cfg_);
}

} // namespace

Result<Config> load_config_from_string(const std::string& yaml, const std::string& name) {
    auto tree = parse_yaml(yaml, name);
    if (!tree) return tree.error();
    Loader loader(tree.value(), name);
    auto cfg = loader.run();
    if (cfg) cfg.value().path = name;
    return cfg;
}

Result<Config> load_config(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        int e = errno;
        return make_error(path + ": cannot read config: " + std::strerror(e), e);
    }
    std::string text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    int e = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (e) return make_error(path + ": cannot read config: " + std::strerror(e), e);
    return load_config_from_string(text, path);
}

} // namespace ls::config

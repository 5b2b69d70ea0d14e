// Configuration sources (--config FILE, --config-dir DIR), read and merged as the original's
// LoadConfigSources does (merge.go), except that every node keeps the file it was written in:
// errors of the merge and of the loader after it are "file:line:col: message" in that file.
//
// The merge, file by file into the first non-empty one, key by key:
// - identity maps (`models`, `groups`, `profiles`, `selectors`, `peers`, `matrix`,
//   `routing.router.settings.groups`, `routing.router.settings.matrix`): a key two files
//   define is refused ("duplicate models \"x\" (already defined at a.yaml:3:3)");
// - other mappings merge per key, recursively; lists concatenate (the earlier file's items
//   first);
// - two scalars must be the same text of the same YAML type (100 and "100" differ, so do ~
//   and 5): "conflict at \"globalTTL\": b.yaml sets 200, a.yaml set 100";
// - an empty value (`key:` and nothing after it) yields to the other file's value, also in
//   an identity map (the original refuses `models:` left empty there);
// - anything else is "conflict at \"x\": incompatible YAML node kinds: ...".
// Keys only in a later file come after the earlier ones, in that file's order. YAML merge keys
// (`<<: *base`) are resolved in each file before its mapping merges; anchors do not cross
// files (each file is parsed alone).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "config/loader.h"
#include "config/merge.h"
#include "config/values.h"

namespace ls::config {
namespace detail {
namespace {

constexpr std::string_view kIdentityMaps[] = {"models",
                                              "groups",
                                              "profiles",
                                              "selectors",
                                              "peers",
                                              "matrix",
                                              "routing.router.settings.groups",
                                              "routing.router.settings.matrix"};

bool is_identity_map(const std::string& path) {
    return std::find(std::begin(kIdentityMaps), std::end(kIdentityMaps), path) !=
           std::end(kIdentityMaps);
}

// `key:` with nothing after it: the only null that yields to another file's value (`~` and
// `null` are values, as in the original).
bool is_empty_value(const Node& n) {
    return n.kind == Node::Kind::Scalar && n.plain && n.value.empty();
}

// The YAML type of a scalar (go-yaml's resolved tag): quoted and block scalars are strings.
std::string_view scalar_type(const Node& n) {
    if (!n.plain) return "string";
    const std::string& v = n.value;
    if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return "null";
    if (v == "true" || v == "True" || v == "TRUE" || v == "false" || v == "False" || v == "FALSE")
        return "bool";
    if (yaml_int(v)) return "int";
    if (yaml_float(v)) return "float";
    return "string";
}

std::string_view kind_name(const Node& n) {
    switch (n.kind) {
    case Node::Kind::Sequence:
        return "a list";
    case Node::Kind::Mapping:
        return "a mapping";
    default:
        return "a scalar";
    }
}

// A scalar as the file wrote it, more or less: quoted unless plain, shortened when long.
std::string shown(const Node& n) {
    std::string text;
    if (n.plain) {
        text = n.value;
    } else {
        text = "\"";
        for (char c : n.value) {
            if (c == '"' || c == '\\')
                text += std::string("\\") + c;
            else if (c == '\n')
                text += "\\n";
            else
                text += c;
        }
        text += "\"";
    }
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return text;
}

class Merger {
public:
    explicit Merger(Tree& t) : t_(t) {}

    // Both are mappings; returns the index of a new mapping node (dst's position).
    Result<int> merge_maps(int dst, int src, const std::string& path);

private:
    Tree& t_;
    using Pairs = std::vector<std::pair<int, int>>;

    const Node& node(int i) const { return t_.nodes[static_cast<size_t>(i)]; }
    const std::string& file(int i) const { return t_.files[static_cast<size_t>(node(i).file)]; }
    Error err(int i, std::string msg) const { return diag_error(file(i), node(i).pos, msg); }
    std::string where(int i) const {
        return file(i) + ":" + std::to_string(node(i).pos.line) + ":" +
               std::to_string(node(i).pos.col);
    }
    int add(Node n) {
        t_.nodes.push_back(std::move(n));
        return static_cast<int>(t_.nodes.size()) - 1;
    }
    int add_like(int like, Node::Kind kind, Pairs pairs, std::vector<int> items) {
        Node n;
        n.kind = kind;
        n.pos = node(like).pos;
        n.file = node(like).file;
        n.plain = false;
        n.pairs = std::move(pairs);
        n.items = std::move(items);
        return add(std::move(n));
    }

    Result<Pairs> pairs(int map, int depth = 0) const;
    Result<int> merge_value(int skey, int dst, int src, const std::string& path);
    Result<int> merge_identity(int dkey, int dst, int skey, int src, const std::string& path);
};

/* The pairs of a mapping with its merge keys resolved like Loader::pairs_of (explicit keys
 * win, then earlier merged mappings over later ones), so that the merged mapping means what
 * each file meant. */
Result<Merger::Pairs> Merger::pairs(int map, int depth) const {
    if (depth > 32) return err(map, "merge keys nested too deeply");
    Pairs out;
    std::vector<int> merges;
    for (auto [k, v] : node(map).pairs) {
        const Node& key = node(k);
        if (key.kind == Node::Kind::Scalar && key.plain && key.value == "<<") {
            if (node(v).kind == Node::Kind::Sequence)
                merges.insert(merges.end(), node(v).items.begin(), node(v).items.end());
            else
                merges.push_back(v);
            continue;
        }
        out.emplace_back(k, v);
    }
    for (int m : merges) {
        if (node(m).kind != Node::Kind::Mapping) return err(m, "merge key '<<' needs a mapping");
        auto merged = pairs(m, depth + 1);
        if (!merged) return merged.error();
        for (auto p : merged.value()) {
            bool present = false;
            for (auto q : out) present = present || node(q.first).value == node(p.first).value;
            if (!present) out.push_back(p);
        }
    }
    return out;
}

Result<int> Merger::merge_maps(int dst, int src, const std::string& path) {
    auto dp = pairs(dst);
    if (!dp) return dp.error();
    auto sp = pairs(src);
    if (!sp) return sp.error();
    Pairs out = std::move(dp.value());
    std::map<std::string, size_t> index; // scalar key -> position in out
    for (size_t i = 0; i < out.size(); ++i)
        if (node(out[i].first).kind == Node::Kind::Scalar)
            index.emplace(node(out[i].first).value, i);
    for (auto [sk, sv] : sp.value()) {
        const Node& key = node(sk);
        auto it = key.kind == Node::Kind::Scalar ? index.find(key.value) : index.end();
        if (it == index.end()) {
            out.emplace_back(sk, sv);
            if (key.kind == Node::Kind::Scalar) index.emplace(key.value, out.size() - 1);
            continue;
        }
        const std::string child = path.empty() ? key.value : path + "." + key.value;
        const auto [dk, dv] = out[it->second];
        auto merged = is_identity_map(child) ? merge_identity(dk, dv, sk, sv, child)
                                             : merge_value(sk, dv, sv, child);
        if (!merged) return merged.error();
        out[it->second].second = merged.value();
    }
    return add_like(dst, Node::Kind::Mapping, std::move(out), {});
}

Result<int> Merger::merge_value(int skey, int dst, int src, const std::string& path) {
    const Node& d = node(dst);
    const Node& s = node(src);
    if (is_empty_value(d)) return src;
    if (is_empty_value(s)) return dst;
    const std::string at = "conflict at \"" + path + "\": ";
    if (d.kind != s.kind)
        return err(skey, at + "incompatible YAML node kinds: " + file(src) + " has " +
                             std::string(kind_name(s)) + ", " + file(dst) + " " +
                             std::string(kind_name(d)));
    switch (d.kind) {
    case Node::Kind::Mapping:
        return merge_maps(dst, src, path);
    case Node::Kind::Sequence: {
        std::vector<int> items = d.items;
        items.insert(items.end(), s.items.begin(), s.items.end());
        return add_like(dst, Node::Kind::Sequence, {}, std::move(items));
    }
    case Node::Kind::Scalar:
        break;
    }
    if (d.value == s.value && scalar_type(d) == scalar_type(s)) return dst;
    return err(skey, at + file(src) + " sets " + shown(s) + ", " + file(dst) + " set " + shown(d));
}

Result<int> Merger::merge_identity(int dkey, int dst, int skey, int src, const std::string& path) {
    if (is_empty_value(node(dst))) return src;
    if (is_empty_value(node(src))) return dst;
    const std::string at = "conflict at \"" + path + "\": ";
    if (node(src).kind != Node::Kind::Mapping)
        return err(skey, at + "expected a mapping, introduced by " + file(src));
    if (node(dst).kind != Node::Kind::Mapping)
        return err(dkey, at + "expected a mapping, introduced by " + file(dst));
    auto dp = pairs(dst);
    if (!dp) return dp.error();
    auto sp = pairs(src);
    if (!sp) return sp.error();
    Pairs out = std::move(dp.value());
    std::map<std::string, int> defined; // id -> its key node
    for (auto [k, v] : out)
        if (node(k).kind == Node::Kind::Scalar) defined.emplace(node(k).value, k);
    const std::string what = path.substr(path.rfind('.') + 1); // npos + 1 == 0
    for (auto [k, v] : sp.value()) {
        if (node(k).kind == Node::Kind::Scalar) {
            if (auto it = defined.find(node(k).value); it != defined.end())
                return err(k, "duplicate " + what + " \"" + node(k).value +
                                  "\" (already defined at " + where(it->second) + ")");
            defined.emplace(node(k).value, k);
        }
        out.emplace_back(k, v);
    }
    return add_like(dst, Node::Kind::Mapping, std::move(out), {});
}

/* A mapping of one file that repeats a key: reported before the merge (which would take the
 * first one), as the loader does for a single file. */
Result<void> check_duplicate_keys(const Tree& t) {
    for (const Node& n : t.nodes) {
        if (n.kind != Node::Kind::Mapping) continue;
        std::set<std::string> seen;
        for (auto [k, v] : n.pairs) {
            (void)v;
            const Node& key = t.nodes[static_cast<size_t>(k)];
            if (key.kind == Node::Kind::Scalar && !seen.insert(key.value).second)
                return diag_error(t.files[static_cast<size_t>(key.file)], key.pos,
                                  "duplicate key '" + key.value + "'");
        }
    }
    return {};
}

} // namespace

Result<Tree> merge_trees(const std::vector<Tree>& trees) {
    Tree out;
    Merger merger(out);
    for (const Tree& t : trees) {
        if (auto r = check_duplicate_keys(t); !r) return r.error();
        const int base = static_cast<int>(out.nodes.size());
        const int file_base = static_cast<int>(out.files.size());
        out.files.insert(out.files.end(), t.files.begin(), t.files.end());
        for (Node n : t.nodes) {
            n.file += file_base;
            for (int& i : n.items) i += base;
            for (auto& [k, v] : n.pairs) {
                k += base;
                v += base;
            }
            out.nodes.push_back(std::move(n));
        }
        if (t.root < 0) continue;
        const int root = t.root + base;
        const Node& r = out.nodes[static_cast<size_t>(root)];
        if (is_null(r)) continue; // an empty (or comment-only) file adds nothing
        if (r.kind != Node::Kind::Mapping)
            return diag_error(out.files[static_cast<size_t>(r.file)], r.pos,
                              "the top level of the configuration must be a mapping");
        if (out.root < 0) {
            out.root = root;
            continue;
        }
        auto merged = merger.merge_maps(out.root, root, "");
        if (!merged) return merged.error();
        out.root = merged.value();
    }
    return out;
}

namespace {

Result<Config> load_merged(std::vector<Tree> trees, const std::string& name) {
    auto tree = merge_trees(trees);
    if (!tree) return tree.error();
    Loader loader(tree.value(), name);
    auto cfg = loader.run();
    if (!cfg) return cfg;
    // The loader sorts its warnings by line: put them in file order first.
    std::map<std::string, size_t> order;
    for (size_t i = 0; i < tree->files.size(); ++i) order.emplace(tree->files[i], i);
    auto rank = [&](const Diagnostic& d) {
        auto it = order.find(d.file);
        return std::tuple(it == order.end() ? order.size() : it->second, d.pos.line, d.pos.col);
    };
    std::stable_sort(cfg->warnings.begin(), cfg->warnings.end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return rank(a) < rank(b); });
    cfg->path = name;
    return cfg;
}

Result<Config> load_texts(const std::vector<std::pair<std::string, std::string>>& files,
                          const std::string& name) {
    if (files.size() == 1) {
        auto cfg = load_config_from_string(files[0].second, files[0].first);
        if (cfg) cfg->path = name;
        return cfg;
    }
    std::vector<Tree> trees;
    for (const auto& [file, text] : files) {
        auto tree = parse_yaml(text, file);
        if (!tree) return tree.error();
        trees.push_back(std::move(tree.value()));
    }
    return load_merged(std::move(trees), name);
}

bool has_suffix(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

Result<std::string> read_file(const std::string& path) {
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
    return text;
}

} // namespace detail

Result<std::vector<std::string>> list_config_dir(const std::string& dir) {
    std::string prefix = dir;
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    if (prefix != "/") prefix += '/';
    DIR* d = opendir(dir.c_str());
    if (!d) {
        int e = errno;
        return make_error(dir + ": cannot read config directory: " + std::strerror(e), e);
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* ent = readdir(d)) {
        std::string_view name = ent->d_name;
        if (!detail::has_suffix(name, ".yaml") && !detail::has_suffix(name, ".yml")) continue;
        bool regular = ent->d_type == DT_REG;
        if (ent->d_type == DT_LNK || ent->d_type == DT_UNKNOWN) {
            // A link to a file counts; a dangling one (an editor's lock file) does not.
            struct stat st;
            regular = stat((prefix + ent->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
        }
        if (regular) names.emplace_back(name);
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (e) return make_error(dir + ": cannot read config directory: " + std::strerror(e), e);
    std::sort(names.begin(), names.end()); // byte order, as Go's sort.Strings
    for (auto& n : names) n = prefix + n;
    return names;
}

Result<std::vector<std::string>> list_config_sources(const ConfigSources& sources) {
    if (sources.file.empty() && sources.dir.empty())
        return make_error("at least one of --config or --config-dir must be provided");
    std::vector<std::string> out;
    if (!sources.file.empty()) out.push_back(sources.file);
    if (!sources.dir.empty()) {
        auto files = list_config_dir(sources.dir);
        if (!files) return files.error();
        struct stat fst;
        if (!sources.file.empty() && stat(sources.file.c_str(), &fst) == 0) {
            // The same file under any name (a link, another spelling of the path).
            for (const auto& f : files.value()) {
                struct stat st;
                if (stat(f.c_str(), &st) == 0 && st.st_dev == fst.st_dev && st.st_ino == fst.st_ino)
                    return make_error("--config " + sources.file +
                                      " is also present in --config-dir " + sources.dir +
                                      (f == sources.file ? "" : " (as " + f + ")") +
                                      "; remove it from one");
            }
        }
        out.insert(out.end(), files->begin(), files->end());
    }
    if (out.empty()) return make_error(sources.dir + ": no configuration sources found");
    return out;
}

std::string describe_config_sources(const ConfigSources& sources, size_t dir_files) {
    if (sources.dir.empty()) return sources.file;
    std::string d =
        std::to_string(dir_files) + (dir_files == 1 ? " file in " : " files in ") + sources.dir;
    return sources.file.empty() ? d : sources.file + " + " + d;
}

Result<Config> load_config_sources(const ConfigSources& sources) {
    if (sources.dir.empty()) return load_config(sources.file);
    auto files = list_config_sources(sources);
    if (!files) return files.error();
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& f : files.value()) {
        auto text = detail::read_file(f);
        if (!text) return text.error();
        texts.emplace_back(f, std::move(text.value()));
    }
    const size_t in_dir = files->size() - (sources.file.empty() ? 0 : 1);
    return detail::load_texts(texts, describe_config_sources(sources, in_dir));
}

Result<Config> load_config_texts(const std::vector<std::pair<std::string, std::string>>& files) {
    if (files.empty()) return load_config_from_string("", "");
    std::string name;
    for (const auto& f : files) name += (name.empty() ? "" : " + ") + f.first;
    return detail::load_texts(files, name);
}

} // namespace ls::config

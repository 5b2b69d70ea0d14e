// The matrix router's core (the original's internal/matrix): a small DSL naming which models
// may run together, compiled once at config load, and a solver that picks, for a requested
// model, the set whose members already running cost the least to evict.
// Pure functions: no I/O, no clock, no config types; the config layer resolves identifiers and
// adds "file:line:col" and "matrix: " to the messages.
//
// DSL (spec §2.3):  expr := and { "|" and }   and := atom { "&" atom }
//                   atom := IDENT | "+" SETNAME | "(" expr ")"
// An IDENT is a var key or a model id; "+name" inlines another set. `a & b` lets a and b run
// together, `a | b` allows either; a set only says which models may coexist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/result.h"

namespace ls::router::matrix {

// Bounds the original lacks, so that parsing stays shallow and small: a longer expression or
// deeper parentheses fail to compile.
inline constexpr std::size_t kMaxDslBytes = 64 * 1024;
inline constexpr int kMaxParenDepth = 128;

struct SetDef {
    std::string name;
    std::string dsl;
};

// Resolves a DSL identifier to a model id; nullopt: unknown.
using Resolver = std::function<std::optional<std::string>(std::string_view ident)>;

// The original's resolveMatrixModel: a var key first (vars win over a model id of the same
// name), then an exact model id; aliases and peer models never resolve.
Resolver make_resolver(std::map<std::string, std::string, std::less<>> vars,
                       std::function<bool(std::string_view)> is_model_id);

enum class TokenKind { ident, op_and, op_or, lparen, rparen, ref, end };

struct Token {
    TokenKind kind;
    std::string text; // ident text, ref name without '+', the operator, "" at the end
    bool operator==(const Token&) const = default;
};

// The DSL's tokenizer, on an already trimmed expression; errors are the original's texts
// (compile() prefixes them with "tokenize: ").
Result<std::vector<Token>> tokenize(std::string_view dsl);

// Compiled sets: one node arena, leaves holding real model ids, refs pointing at the referenced
// set's root. Immutable once compiled; solve() and friends only read it.
class Program {
public:
    // Set names in program order: the order the solver tries them and breaks ties in.
    std::vector<std::string> set_names() const;

    struct Node {
        enum class Kind : std::uint8_t { leaf, ref, all_of, any_of };
        Kind kind = Kind::leaf;
        std::string name;                    // leaf: the model id; ref: the referenced set
        std::uint32_t target = 0;            // leaf: index in models; ref: the referenced root
        std::vector<std::uint32_t> children; // all_of (&) and any_of (|)
    };
    struct Set {
        std::string name;
        std::string dsl;
        std::uint32_t root = 0;
        std::vector<std::uint64_t> support; // bit per model reachable from root: a pre-filter
    };

    // Read-only views, for the solver and for tests.
    const std::vector<Node>& nodes() const { return nodes_; }
    const std::vector<Set>& sets() const { return sets_; }
    const std::vector<std::string>& models() const { return models_; }
    std::optional<std::uint32_t> model_index(const std::string& model) const;

private:
    friend Result<Program> compile(const std::vector<SetDef>& sets, const Resolver& resolve);

    std::vector<Node> nodes_;
    std::vector<Set> sets_; // program order
    std::vector<std::string> models_;
    std::unordered_map<std::string, std::uint32_t> model_index_;
};

// Compiles the sets in the order given. Errors are the spec's texts without "matrix: ", e.g.
// `set "s": parse: missing closing parenthesis`. Program order: referenced sets before the sets
// that reference them, otherwise the order given.
Result<Program> compile(const std::vector<SetDef>& sets, const Resolver& resolve);

struct Decision {
    std::vector<std::string> evict;      // running models to stop, in sorted order
    std::vector<std::string> target_set; // the chosen alternative, sorted (for logs only)
    std::string set_name;                // "" when the target runs alone
    std::string dsl;                     // the chosen set's DSL (for logs)
    long long cost = 0;                  // sum of the evicted models' costs
};

// Cost of evicting a model; an empty function costs 1 for every model (the original's default).
using EvictCost = std::function<long long(const std::string& model)>;

// `running`: models not stopped (starting, ready, stopping) and the targets of swaps under way,
// in any order, duplicates allowed (sorted and deduplicated here, as the original does).
// Costs must be positive. A target already running evicts nothing; a target in no set evicts
// everything.
Decision solve(const Program& program, const std::string& target, std::vector<std::string> running,
               const EvictCost& cost = {});

// True when one alternative of some set holds every model (vacuously for none).
bool can_contain_all(const Program& program, const std::vector<std::string>& models);

// The projected states of one set over the `relevant` models, in enumeration order, each as the
// sorted models of its witness alternative (the original's projectedSets test helper, kept for
// tests and logs); empty for an unknown set.
std::vector<std::vector<std::string>> projected_sets(const Program& program, std::string_view set,
                                                     const std::vector<std::string>& relevant);

// ---- Config-layer rules that belong with the matrix (spec §2.2) ----

// `^[a-zA-Z0-9.-]{1,32}$`, ASCII only.
bool valid_var_key(std::string_view key);
// `var key "a_b" must contain only alphanumeric, '-' or '.' characters and be 1-32 characters
// long`
std::string invalid_var_key_message(std::string_view key);
// `var key "x" references unknown model "nonexistent"`
std::string unknown_var_model_message(std::string_view key, std::string_view model);
// One evict_costs entry, checked in the original's order: the cost first, then the key.
std::optional<std::string> evict_cost_error(std::string_view key, long long cost,
                                            bool key_resolves);

// Go's %q of a string (strconv.Quote), so messages quote names as the original does.
std::string go_quote(std::string_view text);

} // namespace ls::router::matrix

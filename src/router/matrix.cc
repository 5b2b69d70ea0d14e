#include "router/matrix.h"

#include <algorithm>
#include <array>
#include <utility>

namespace ls::router::matrix {

namespace {

// ---- Runes as Go sees them (the original scans []rune(input) and quotes with %q) ----

struct Rune {
    char32_t value = 0;
    std::size_t width = 1;
    bool valid = true; // false: an invalid byte, which Go reads as U+FFFD of width 1
};

constexpr char32_t kReplacement = 0xFFFD;

Rune decode_rune(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
        return k < s.size() && byte(k) >= lo && byte(k) <= hi;
    };
    unsigned b0 = byte(i);
    if (b0 < 0x80) return {b0, 1, true};
    if (b0 >= 0xC2 && b0 <= 0xDF && cont(i + 1))
        return {((b0 & 0x1Fu) << 6) | (byte(i + 1) & 0x3Fu), 2, true};
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
        if (cont(i + 1, lo, hi) && cont(i + 2))
            return {((b0 & 0x0Fu) << 12) | ((byte(i + 1) & 0x3Fu) << 6) | (byte(i + 2) & 0x3Fu), 3,
                    true};
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
        if (cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3))
            return {((b0 & 0x07u) << 18) | ((byte(i + 1) & 0x3Fu) << 12) |
                        ((byte(i + 2) & 0x3Fu) << 6) | (byte(i + 3) & 0x3Fu),
                    4, true};
    }
    return {kReplacement, 1, false};
}

// unicode.IsSpace: the Unicode White_Space property.
bool is_space(char32_t r) {
    switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return r >= 0x2000 && r <= 0x200A;
    }
}

bool is_letter_or_digit_beyond_ascii(char32_t r);

// unicode.IsLetter || unicode.IsDigit || '_' || '-' || '.'
bool is_ident_rune(char32_t r) {
    if (r < 0x80)
        return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') ||
               r == '_' || r == '-' || r == '.';
    return is_letter_or_digit_beyond_ascii(r);
}

bool is_format_or_private_use(char32_t r);

// strconv.IsPrint: letters, marks, numbers, punctuation, symbols and ' '. Approximated beyond
// ASCII as "not a control, space, format or private-use rune": Go also escapes unassigned code
// points, which would need the whole table of assigned ones.
bool is_printable(char32_t r) {
    if (r < 0x80) return r >= 0x20 && r < 0x7F;
    if (r < 0xA0 || is_space(r)) return false;
    return !is_format_or_private_use(r);
}

void append_utf8(std::string& out, char32_t r) {
    if (r < 0x80) {
        out += static_cast<char>(r);
    } else if (r < 0x800) {
        out += static_cast<char>(0xC0 | (r >> 6));
        out += static_cast<char>(0x80 | (r & 0x3F));
    } else if (r < 0x10000) {
        out += static_cast<char>(0xE0 | (r >> 12));
        out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (r & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (r >> 18));
        out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (r & 0x3F));
    }
}

void append_hex(std::string& out, std::uint32_t value, int digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHex[(value >> shift) & 0xF];
}

// strconv's appendEscapedRune.
void append_escaped_rune(std::string& out, char32_t r, char quote) {
    if (r == static_cast<char32_t>(quote) || r == '\\') {
        out += '\\';
        out += static_cast<char>(r);
        return;
    }
    if (is_printable(r)) return append_utf8(out, r);
    switch (r) {
    case '\a':
        out += "\\a";
        return;
    case '\b':
        out += "\\b";
        return;
    case '\f':
        out += "\\f";
        return;
    case '\n':
        out += "\\n";
        return;
    case '\r':
        out += "\\r";
        return;
    case '\t':
        out += "\\t";
        return;
    case '\v':
        out += "\\v";
        return;
    default:
        break;
    }
    if (r < ' ' || r == 0x7F) {
        out += "\\x";
        append_hex(out, r, 2);
    } else if (r < 0x10000) {
        out += "\\u";
        append_hex(out, r, 4);
    } else {
        out += "\\U";
        append_hex(out, r, 8);
    }
}

// Go's %q of a rune.
std::string quote_rune(char32_t r) {
    std::string out = "'";
    append_escaped_rune(out, r, '\'');
    out += '\'';
    return out;
}

// strings.TrimSpace.
std::string_view trim_space(std::string_view s) {
    std::size_t begin = s.size(), end = 0;
    for (std::size_t i = 0; i < s.size();) {
        Rune r = decode_rune(s, i);
        if (!(r.valid && is_space(r.value))) {
            begin = std::min(begin, i);
            end = i + r.width;
        }
        i += r.width;
    }
    return begin < end ? s.substr(begin, end - begin) : std::string_view{};
}

std::string format(std::string_view a, std::string_view b = {}, std::string_view c = {},
                   std::string_view d = {}) {
    std::string out;
    out.reserve(a.size() + b.size() + c.size() + d.size());
    out.append(a).append(b).append(c).append(d);
    return out;
}

// ---- Parsing ----

using Node = Program::Node;

class Parser {
public:
    Parser(std::vector<Token> tokens, std::vector<Node>& nodes)
        : tokens_(std::move(tokens)), nodes_(nodes) {}

    // The whole expression; errors without the "parse: " prefix.
    Result<std::uint32_t> parse() {
        auto root = parse_any_of();
        if (!root) return root;
        if (peek().kind != TokenKind::end)
            return make_error(
                format("unexpected token ", go_quote(peek().text), " after expression"));
        return root;
    }

private:
    const Token& peek() const { return tokens_[pos_]; } // tokens always end with `end`
    const Token& next() {
        const Token& t = tokens_[pos_];
        if (t.kind != TokenKind::end) ++pos_;
        return t;
    }

    std::uint32_t add(Node node) {
        nodes_.push_back(std::move(node));
        return static_cast<std::uint32_t>(nodes_.size() - 1);
    }

    // One operand stays itself; two or more make one flat n-ary node.
    Result<std::uint32_t> parse_list(TokenKind separator, Node::Kind kind,
                                     Result<std::uint32_t> (Parser::*operand)()) {
        auto first = (this->*operand)();
        if (!first || peek().kind != separator) return first;
        Node node{kind, {}, 0, {first.value()}};
        while (peek().kind == separator) {
            next();
            auto more = (this->*operand)();
            if (!more) return more;
            node.children.push_back(more.value());
        }
        return add(std::move(node));
    }

    Result<std::uint32_t> parse_any_of() {
        return parse_list(TokenKind::op_or, Node::Kind::any_of, &Parser::parse_all_of);
    }
    Result<std::uint32_t> parse_all_of() {
        return parse_list(TokenKind::op_and, Node::Kind::all_of, &Parser::parse_atom);
    }

    Result<std::uint32_t> parse_atom() {
        const Token& t = next();
        switch (t.kind) {
        case TokenKind::ident:
            return add(Node{Node::Kind::leaf, t.text, 0, {}});
        case TokenKind::ref:
            return add(Node{Node::Kind::ref, t.text, 0, {}});
        case TokenKind::lparen: {
            // The only recursion: bounded so that hostile input cannot exhaust the stack.
            if (++depth_ > kMaxParenDepth)
                return make_error(
                    format("parentheses nested deeper than ", std::to_string(kMaxParenDepth)));
            auto inner = parse_any_of();
            if (!inner) return inner;
            if (next().kind != TokenKind::rparen) return make_error("missing closing parenthesis");
            --depth_;
            return inner;
        }
        default:
            return make_error(format("unexpected token ", go_quote(t.text)));
        }
    }

    std::vector<Token> tokens_;
    std::size_t pos_ = 0;
    int depth_ = 0;
    std::vector<Node>& nodes_;
};

// Parses one definition into `nodes`; leaves and refs land in textual order.
Result<std::uint32_t> parse_dsl(std::string_view input, std::vector<Node>& nodes) {
    std::string_view dsl = trim_space(input);
    if (dsl.empty()) return make_error("empty DSL expression");
    if (dsl.size() > kMaxDslBytes)
        return make_error(
            format("DSL expression longer than ", std::to_string(kMaxDslBytes), " bytes"));
    auto tokens = tokenize(dsl);
    if (!tokens) return make_error(format("tokenize: ", tokens.error().message));
    auto root = Parser(std::move(tokens.value()), nodes).parse();
    if (!root) return make_error(format("parse: ", root.error().message));
    return root;
}

// ---- Compiling ----

// Depth-first over the definitions in the order given, dependencies first (the original's
// topologicalOrder, with an explicit stack so that long ref chains cannot overflow).
Result<std::vector<std::uint32_t>>
topological_order(const std::vector<SetDef>& sets,
                  const std::vector<std::vector<std::uint32_t>>& deps) {
    enum class Mark : std::uint8_t { unvisited, in_progress, done };
    std::vector<Mark> mark(sets.size(), Mark::unvisited);
    std::vector<std::uint32_t> order;
    std::vector<std::pair<std::uint32_t, std::size_t>> stack; // set, next dependency
    for (std::uint32_t start = 0; start < sets.size(); ++start) {
        if (mark[start] != Mark::unvisited) continue;
        mark[start] = Mark::in_progress;
        stack.emplace_back(start, 0);
        while (!stack.empty()) {
            auto& [set, next_dep] = stack.back();
            if (next_dep == deps[set].size()) {
                mark[set] = Mark::done;
                order.push_back(set);
                stack.pop_back();
                continue;
            }
            std::uint32_t dep = deps[set][next_dep++];
            if (mark[dep] == Mark::in_progress)
                return make_error(
                    format("circular reference detected involving set ", go_quote(sets[dep].name)));
            if (mark[dep] == Mark::unvisited) {
                mark[dep] = Mark::in_progress;
                stack.emplace_back(dep, 0);
            }
        }
    }
    return order;
}

// ---- Bit masks of any width ----

using Bits = std::vector<std::uint64_t>;

Bits empty_bits(std::size_t bits) {
    return Bits((bits + 63) / 64, 0);
}
bool has_bit(const Bits& b, std::size_t bit) {
    return (b[bit / 64] >> (bit % 64)) & 1u;
}
void set_bit(Bits& b, std::size_t bit) {
    b[bit / 64] |= std::uint64_t{1} << (bit % 64);
}
void unite_into(Bits& into, const Bits& other) {
    for (std::size_t i = 0; i < into.size(); ++i) into[i] |= other[i];
}
bool subset_of(const Bits& a, const Bits& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] & ~b[i]) return false;
    return true;
}

// ---- Projected states (the original's evaluator) ----

// One alternative of a node seen through the relevant models: `mask` holds the relevant models
// it lets stay, `witness` every model of one alternative that produced it (for logs).
struct State {
    Bits mask;
    Bits witness; // over program models
};

// A state whose mask is covered by another is never better, since every relevant model is the
// target or costs something to evict; so only the maximal masks are kept, first come first.
void add_to_frontier(std::vector<State>& states, State candidate) {
    for (const State& s : states)
        if (subset_of(candidate.mask, s.mask)) return;
    std::erase_if(states, [&](const State& s) { return subset_of(s.mask, candidate.mask); });
    states.push_back(std::move(candidate));
}

// Projects nodes onto the models relevant to one query, memoised per node for that query.
class Evaluator {
public:
    Evaluator(const Program& program, const std::vector<std::string>& relevant)
        : program_(program), bit_of_model_(program.models().size(), kNone),
          memo_(program.nodes().size()), done_(program.nodes().size(), false) {
        for (const auto& model : relevant) {
            if (bits_.contains(model)) continue;
            std::size_t bit = bits_.size();
            bits_.emplace(model, bit);
            if (auto index = program.model_index(model)) bit_of_model_[*index] = bit;
        }
    }

    std::size_t bit_of(const std::string& relevant_model) const { return bits_.at(relevant_model); }
    Bits full_mask() const {
        Bits all = empty_bits(bits_.size());
        for (std::size_t bit = 0; bit < bits_.size(); ++bit) set_bit(all, bit);
        return all;
    }

    // Sorted, as the original's flattenWitness.
    std::vector<std::string> witness_models(const State& state) const {
        std::vector<std::string> models;
        for (std::size_t i = 0; i < program_.models().size(); ++i)
            if (has_bit(state.witness, i)) models.push_back(program_.models()[i]);
        std::sort(models.begin(), models.end());
        return models;
    }

    // Children before parents with an explicit stack: ref chains across many sets stay flat.
    const std::vector<State>& states_of(std::uint32_t node) {
        node = through_refs(node);
        std::vector<std::uint32_t> stack{node};
        while (!stack.empty()) {
            std::uint32_t top = stack.back();
            if (done_[top]) {
                stack.pop_back();
                continue;
            }
            bool ready = true;
            for (std::uint32_t child : program_.nodes()[top].children) {
                child = through_refs(child);
                if (!done_[child]) {
                    stack.push_back(child);
                    ready = false;
                }
            }
            if (!ready) continue;
            compute(top);
            done_[top] = true;
            stack.pop_back();
        }
        return memo_[node];
    }

private:
    static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

    // A ref has the states of the set it names: it shares that root's memo.
    std::uint32_t through_refs(std::uint32_t node) const {
        while (program_.nodes()[node].kind == Node::Kind::ref) node = program_.nodes()[node].target;
        return node;
    }

    State empty_state() const {
        return {empty_bits(bits_.size()), empty_bits(program_.models().size())};
    }

    void compute(std::uint32_t index) {
        const Node& node = program_.nodes()[index];
        std::vector<State>& states = memo_[index];
        switch (node.kind) {
        case Node::Kind::leaf: {
            State state = empty_state();
            if (std::size_t bit = bit_of_model_[node.target]; bit != kNone)
                set_bit(state.mask, bit);
            set_bit(state.witness, node.target);
            states.push_back(std::move(state));
            break;
        }
        case Node::Kind::any_of:
            for (std::uint32_t child : node.children)
                for (const State& state : memo_[through_refs(child)])
                    add_to_frontier(states, state);
            break;
        case Node::Kind::all_of: {
            // Uniting projected masks gives what the full Cartesian product would, while the
            // frontier drops the choices that cannot matter before the next operand.
            states.push_back(empty_state());
            for (std::uint32_t child : node.children) {
                std::vector<State> combined;
                for (const State& left : states) {
                    for (const State& right : memo_[through_refs(child)]) {
                        State state = left;
                        unite_into(state.mask, right.mask);
                        unite_into(state.witness, right.witness);
                        add_to_frontier(combined, std::move(state));
                    }
                }
                states = std::move(combined);
            }
            break;
        }
        case Node::Kind::ref:
            break; // never computed: through_refs skips it
        }
    }

    const Program& program_;
    std::unordered_map<std::string, std::size_t> bits_; // relevant model -> bit, first seen
    std::vector<std::size_t> bit_of_model_;             // program model -> bit or kNone
    std::vector<std::vector<State>> memo_;              // per node
    std::vector<bool> done_;
};

bool supports(const Program& program, const Program::Set& set, const std::string& model) {
    auto index = program.model_index(model);
    return index && has_bit(set.support, *index);
}

// The first set in program order with one alternative holding all of `models` (non-empty).
const Program::Set* first_set_containing(const Program& program,
                                         const std::vector<std::string>& models) {
    Evaluator evaluator(program, models);
    Bits required = evaluator.full_mask();
    for (const auto& set : program.sets()) {
        if (!std::all_of(models.begin(), models.end(),
                         [&](const std::string& m) { return supports(program, set, m); }))
            continue;
        for (const State& state : evaluator.states_of(set.root))
            if (subset_of(required, state.mask)) return &set;
    }
    return nullptr;
}

} // namespace

// ---- Public API ----

Resolver make_resolver(std::map<std::string, std::string, std::less<>> vars,
                       std::function<bool(std::string_view)> is_model_id) {
    return [vars = std::move(vars), is_model_id = std::move(is_model_id)](
               std::string_view ident) -> std::optional<std::string> {
        if (auto it = vars.find(ident); it != vars.end()) return it->second;
        if (is_model_id && is_model_id(ident)) return std::string(ident);
        return std::nullopt;
    };
}

Result<std::vector<Token>> tokenize(std::string_view dsl) {
    std::vector<Token> tokens;
    std::size_t rune_index = 0; // positions in messages count runes, as Go's []rune does
    std::size_t i = 0;
    auto take_ident = [&] {
        std::size_t start = i;
        for (Rune r; i < dsl.size() && (r = decode_rune(dsl, i)).valid && is_ident_rune(r.value);
             i += r.width)
            ++rune_index;
        return std::string(dsl.substr(start, i - start));
    };
    while (i < dsl.size()) {
        Rune r = decode_rune(dsl, i);
        if (r.valid && is_space(r.value)) {
            i += r.width;
            ++rune_index;
            continue;
        }
        switch (r.value) {
        case '&':
            tokens.push_back({TokenKind::op_and, "&"});
            break;
        case '|':
            tokens.push_back({TokenKind::op_or, "|"});
            break;
        case '(':
            tokens.push_back({TokenKind::lparen, "("});
            break;
        case ')':
            tokens.push_back({TokenKind::rparen, ")"});
            break;
        case '+': {
            i += 1;
            ++rune_index;
            std::size_t after_plus = rune_index;
            std::string name = take_ident();
            if (name.empty())
                return make_error(
                    format("expected set name after '+' at position ", std::to_string(after_plus)));
            tokens.push_back({TokenKind::ref, std::move(name)});
            continue;
        }
        default:
            if (!r.valid || !is_ident_rune(r.value))
                return make_error(format("unexpected character ", quote_rune(r.value),
                                         " at position ", std::to_string(rune_index)));
            tokens.push_back({TokenKind::ident, take_ident()});
            continue;
        }
        i += 1; // the one-byte operators
        ++rune_index;
    }
    tokens.push_back({TokenKind::end, ""});
    return tokens;
}

std::vector<std::string> Program::set_names() const {
    std::vector<std::string> names;
    for (const auto& set : sets_) names.push_back(set.name);
    return names;
}

std::optional<std::uint32_t> Program::model_index(const std::string& model) const {
    if (auto it = model_index_.find(model); it != model_index_.end()) return it->second;
    return std::nullopt;
}

Result<Program> compile(const std::vector<SetDef>& sets, const Resolver& resolve) {
    if (sets.empty()) return make_error("matrix must define at least one set");
    std::unordered_map<std::string, std::uint32_t> set_index;
    for (std::uint32_t i = 0; i < sets.size(); ++i)
        if (!set_index.emplace(sets[i].name, i).second)
            return make_error(format("set ", go_quote(sets[i].name), " is defined more than once"));

    Program program;
    std::vector<std::uint32_t> roots(sets.size());
    std::vector<std::pair<std::size_t, std::size_t>> node_ranges(sets.size());
    std::vector<std::vector<std::uint32_t>> deps(sets.size()); // distinct refs, first seen first
    for (std::uint32_t i = 0; i < sets.size(); ++i) {
        const std::string quoted = go_quote(sets[i].name);
        std::size_t first_node = program.nodes_.size();
        auto root = parse_dsl(sets[i].dsl, program.nodes_);
        if (!root) return make_error(format("set ", quoted, ": ", root.error().message));
        roots[i] = root.value();
        node_ranges[i] = {first_node, program.nodes_.size()};
        // Leaves and refs sit in textual order, so the first bad one is reported, as the
        // original's pre-order walk does.
        for (std::size_t n = first_node; n < program.nodes_.size(); ++n) {
            Node& node = program.nodes_[n];
            if (node.kind == Node::Kind::leaf) {
                auto model = resolve ? resolve(node.name) : std::nullopt;
                if (!model)
                    return make_error(
                        format("set ", quoted, ": unknown var or model ", go_quote(node.name)));
                auto [it, added] = program.model_index_.emplace(
                    *model, static_cast<std::uint32_t>(program.models_.size()));
                if (added) program.models_.push_back(*model);
                node.name = std::move(*model);
                node.target = it->second;
            } else if (node.kind == Node::Kind::ref) {
                auto it = set_index.find(node.name);
                if (it == set_index.end())
                    return make_error(
                        format("set ", quoted, " references undefined set ", go_quote(node.name)));
                node.target = it->second; // a set index until linked below
                if (std::find(deps[i].begin(), deps[i].end(), it->second) == deps[i].end())
                    deps[i].push_back(it->second);
            }
        }
    }

    // Unlike the original, whose config loader hands the sets over in yaml.v3's sorted key
    // order by accident, the sets keep the order given (the config file's), so ties go to the
    // set defined first; referenced sets still come before the sets that use them.
    auto order = topological_order(sets, deps);
    if (!order) return order.error();

    for (auto& node : program.nodes_)
        if (node.kind == Node::Kind::ref) node.target = roots[node.target];

    // Support in program order: a referenced set's support is ready before its users need it.
    std::vector<Bits> support(sets.size());
    for (std::uint32_t i : order.value()) {
        Bits bits = empty_bits(program.models_.size());
        for (std::size_t n = node_ranges[i].first; n < node_ranges[i].second; ++n) {
            const Node& node = program.nodes_[n];
            if (node.kind == Node::Kind::leaf) set_bit(bits, node.target);
            if (node.kind == Node::Kind::ref) unite_into(bits, support.at(set_index.at(node.name)));
        }
        support[i] = bits;
        program.sets_.push_back({sets[i].name, sets[i].dsl, roots[i], std::move(bits)});
    }
    return program;
}

Decision solve(const Program& program, const std::string& target, std::vector<std::string> running,
               const EvictCost& cost) {
    std::sort(running.begin(), running.end());
    running.erase(std::unique(running.begin(), running.end()), running.end());

    // Once the target exists in any state, nothing is evicted for it, valid set or not.
    if (std::binary_search(running.begin(), running.end(), target)) {
        Decision decision;
        if (const auto* set = first_set_containing(program, running)) {
            decision.set_name = set->name;
            decision.dsl = set->dsl;
        }
        decision.target_set = std::move(running);
        return decision;
    }

    std::vector<std::string> relevant{target};
    relevant.insert(relevant.end(), running.begin(), running.end());
    Evaluator evaluator(program, relevant);
    const std::size_t target_bit = evaluator.bit_of(target);
    auto cost_of = [&](const std::string& model) { return cost ? cost(model) : 1LL; };

    const Program::Set* best_set = nullptr;
    const State* best_state = nullptr;
    long long best_cost = 0;
    for (const auto& set : program.sets()) {
        if (!supports(program, set, target)) continue; // also skips every set for an unknown target
        for (const State& state : evaluator.states_of(set.root)) {
            if (!has_bit(state.mask, target_bit)) continue;
            long long total = 0;
            for (const auto& model : running)
                if (!has_bit(state.mask, evaluator.bit_of(model))) total += cost_of(model);
            if (!best_state || total < best_cost) { // ties keep the earlier set and state
                best_set = &set;
                best_state = &state;
                best_cost = total;
            }
        }
    }

    Decision decision;
    if (!best_state) { // the target runs alone
        decision.evict = std::move(running);
        decision.target_set = {target};
        return decision;
    }
    for (const auto& model : running)
        if (!has_bit(best_state->mask, evaluator.bit_of(model))) decision.evict.push_back(model);
    decision.target_set = evaluator.witness_models(*best_state);
    decision.set_name = best_set->name;
    decision.dsl = best_set->dsl;
    decision.cost = best_cost;
    return decision;
}

bool can_contain_all(const Program& program, const std::vector<std::string>& models) {
    return models.empty() || first_set_containing(program, models) != nullptr;
}

std::vector<std::vector<std::string>> projected_sets(const Program& program, std::string_view set,
                                                     const std::vector<std::string>& relevant) {
    std::vector<std::vector<std::string>> alternatives;
    for (const auto& candidate : program.sets()) {
        if (candidate.name != set) continue;
        Evaluator evaluator(program, relevant);
        for (const State& state : evaluator.states_of(candidate.root))
            alternatives.push_back(evaluator.witness_models(state));
        break;
    }
    return alternatives;
}

bool valid_var_key(std::string_view key) {
    if (key.empty() || key.size() > 32) return false;
    return std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '-';
    });
}

std::string invalid_var_key_message(std::string_view key) {
    return format("var key ", go_quote(key),
                  " must contain only alphanumeric, '-' or '.' characters and be 1-32 "
                  "characters long");
}

std::string unknown_var_model_message(std::string_view key, std::string_view model) {
    return format("var key ", go_quote(key), " references unknown model ", go_quote(model));
}

std::optional<std::string> evict_cost_error(std::string_view key, long long cost,
                                            bool key_resolves) {
    if (cost <= 0)
        return format("evict_cost for ", go_quote(key), " must be a positive integer, got ",
                      std::to_string(cost));
    if (!key_resolves) return format("evict_costs: unknown var or model ", go_quote(key));
    return std::nullopt;
}

std::string go_quote(std::string_view text) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size();) {
        Rune r = decode_rune(text, i);
        if (r.valid) {
            append_escaped_rune(out, r.value, '"');
        } else {
            out += "\\x";
            append_hex(out, static_cast<unsigned char>(text[i]), 2);
        }
        i += r.width;
    }
    out += '"';
    return out;
}

// ---- Unicode tables (15.0.0, as Go's unicode package) ----

namespace {

struct RuneRange {
    char32_t first;
    char32_t last;
};

template <std::size_t N>
bool in_ranges(const std::array<RuneRange, N>& ranges, char32_t r) {
    auto it = std::upper_bound(
        ranges.begin(), ranges.end(), r,
        [](char32_t value, const RuneRange& range) { return value < range.first; });
    return it != ranges.begin() && r <= std::prev(it)->last;
}

// General categories Cf and Co (format and private use): escaped by Go's %q.
constexpr std::array<RuneRange, 24> kFormatOrPrivateUse{{
    {0xAD, 0xAD},       {0x600, 0x605},     {0x61C, 0x61C},     {0x6DD, 0x6DD},
    {0x70F, 0x70F},     {0x890, 0x891},     {0x8E2, 0x8E2},     {0x180E, 0x180E},
    {0x200B, 0x200F},   {0x202A, 0x202E},   {0x2060, 0x2064},   {0x2066, 0x206F},
    {0xE000, 0xF8FF},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD},
    {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
    {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD},
}};

// General categories L* and Nd beyond ASCII (unicode.IsLetter || unicode.IsDigit), generated
// from UnicodeData.txt 15.0.0 (Debian's unicode-data), merging adjacent code points.
constexpr std::array<RuneRange, 702> kLettersAndDigits{{
    {0xAA, 0xAA},       {0xB5, 0xB5},       {0xBA, 0xBA},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x2C1},      {0x2C6, 0x2D1},     {0x2E0, 0x2E4},
    {0x2EC, 0x2EC},     {0x2EE, 0x2EE},     {0x370, 0x374},     {0x376, 0x377},
    {0x37A, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},
    {0x48A, 0x52F},     {0x531, 0x556},     {0x559, 0x559},     {0x560, 0x588},
    {0x5D0, 0x5EA},     {0x5EF, 0x5F2},     {0x620, 0x64A},     {0x660, 0x669},
    {0x66E, 0x66F},     {0x671, 0x6D3},     {0x6D5, 0x6D5},     {0x6E5, 0x6E6},
    {0x6EE, 0x6FC},     {0x6FF, 0x6FF},     {0x710, 0x710},     {0x712, 0x72F},
    {0x74D, 0x7A5},     {0x7B1, 0x7B1},     {0x7C0, 0x7EA},     {0x7F4, 0x7F5},
    {0x7FA, 0x7FA},     {0x800, 0x815},     {0x81A, 0x81A},     {0x824, 0x824},
    {0x828, 0x828},     {0x840, 0x858},     {0x860, 0x86A},     {0x870, 0x887},
    {0x889, 0x88E},     {0x8A0, 0x8C9},     {0x904, 0x939},     {0x93D, 0x93D},
    {0x950, 0x950},     {0x958, 0x961},     {0x966, 0x96F},     {0x971, 0x980},
    {0x985, 0x98C},     {0x98F, 0x990},     {0x993, 0x9A8},     {0x9AA, 0x9B0},
    {0x9B2, 0x9B2},     {0x9B6, 0x9B9},     {0x9BD, 0x9BD},     {0x9CE, 0x9CE},
    {0x9DC, 0x9DD},     {0x9DF, 0x9E1},     {0x9E6, 0x9F1},     {0x9FC, 0x9FC},
    {0xA05, 0xA0A},     {0xA0F, 0xA10},     {0xA13, 0xA28},     {0xA2A, 0xA30},
    {0xA32, 0xA33},     {0xA35, 0xA36},     {0xA38, 0xA39},     {0xA59, 0xA5C},
    {0xA5E, 0xA5E},     {0xA66, 0xA6F},     {0xA72, 0xA74},     {0xA85, 0xA8D},
    {0xA8F, 0xA91},     {0xA93, 0xAA8},     {0xAAA, 0xAB0},     {0xAB2, 0xAB3},
    {0xAB5, 0xAB9},     {0xABD, 0xABD},     {0xAD0, 0xAD0},     {0xAE0, 0xAE1},
    {0xAE6, 0xAEF},     {0xAF9, 0xAF9},     {0xB05, 0xB0C},     {0xB0F, 0xB10},
    {0xB13, 0xB28},     {0xB2A, 0xB30},     {0xB32, 0xB33},     {0xB35, 0xB39},
    {0xB3D, 0xB3D},     {0xB5C, 0xB5D},     {0xB5F, 0xB61},     {0xB66, 0xB6F},
    {0xB71, 0xB71},     {0xB83, 0xB83},     {0xB85, 0xB8A},     {0xB8E, 0xB90},
    {0xB92, 0xB95},     {0xB99, 0xB9A},     {0xB9C, 0xB9C},     {0xB9E, 0xB9F},
    {0xBA3, 0xBA4},     {0xBA8, 0xBAA},     {0xBAE, 0xBB9},     {0xBD0, 0xBD0},
    {0xBE6, 0xBEF},     {0xC05, 0xC0C},     {0xC0E, 0xC10},     {0xC12, 0xC28},
    {0xC2A, 0xC39},     {0xC3D, 0xC3D},     {0xC58, 0xC5A},     {0xC5D, 0xC5D},
    {0xC60, 0xC61},     {0xC66, 0xC6F},     {0xC80, 0xC80},     {0xC85, 0xC8C},
    {0xC8E, 0xC90},     {0xC92, 0xCA8},     {0xCAA, 0xCB3},     {0xCB5, 0xCB9},
    {0xCBD, 0xCBD},     {0xCDD, 0xCDE},     {0xCE0, 0xCE1},     {0xCE6, 0xCEF},
    {0xCF1, 0xCF2},     {0xD04, 0xD0C},     {0xD0E, 0xD10},     {0xD12, 0xD3A},
    {0xD3D, 0xD3D},     {0xD4E, 0xD4E},     {0xD54, 0xD56},     {0xD5F, 0xD61},
    {0xD66, 0xD6F},     {0xD7A, 0xD7F},     {0xD85, 0xD96},     {0xD9A, 0xDB1},
    {0xDB3, 0xDBB},     {0xDBD, 0xDBD},     {0xDC0, 0xDC6},     {0xDE6, 0xDEF},
    {0xE01, 0xE30},     {0xE32, 0xE33},     {0xE40, 0xE46},     {0xE50, 0xE59},
    {0xE81, 0xE82},     {0xE84, 0xE84},     {0xE86, 0xE8A},     {0xE8C, 0xEA3},
    {0xEA5, 0xEA5},     {0xEA7, 0xEB0},     {0xEB2, 0xEB3},     {0xEBD, 0xEBD},
    {0xEC0, 0xEC4},     {0xEC6, 0xEC6},     {0xED0, 0xED9},     {0xEDC, 0xEDF},
    {0xF00, 0xF00},     {0xF20, 0xF29},     {0xF40, 0xF47},     {0xF49, 0xF6C},
    {0xF88, 0xF8C},     {0x1000, 0x102A},   {0x103F, 0x1049},   {0x1050, 0x1055},
    {0x105A, 0x105D},   {0x1061, 0x1061},   {0x1065, 0x1066},   {0x106E, 0x1070},
    {0x1075, 0x1081},   {0x108E, 0x108E},   {0x1090, 0x1099},   {0x10A0, 0x10C5},
    {0x10C7, 0x10C7},   {0x10CD, 0x10CD},   {0x10D0, 0x10FA},   {0x10FC, 0x1248},
    {0x124A, 0x124D},   {0x1250, 0x1256},   {0x1258, 0x1258},   {0x125A, 0x125D},
    {0x1260, 0x1288},   {0x128A, 0x128D},   {0x1290, 0x12B0},   {0x12B2, 0x12B5},
    {0x12B8, 0x12BE},   {0x12C0, 0x12C0},   {0x12C2, 0x12C5},   {0x12C8, 0x12D6},
    {0x12D8, 0x1310},   {0x1312, 0x1315},   {0x1318, 0x135A},   {0x1380, 0x138F},
    {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1401, 0x166C},   {0x166F, 0x167F},
    {0x1681, 0x169A},   {0x16A0, 0x16EA},   {0x16F1, 0x16F8},   {0x1700, 0x1711},
    {0x171F, 0x1731},   {0x1740, 0x1751},   {0x1760, 0x176C},   {0x176E, 0x1770},
    {0x1780, 0x17B3},   {0x17D7, 0x17D7},   {0x17DC, 0x17DC},   {0x17E0, 0x17E9},
    {0x1810, 0x1819},   {0x1820, 0x1878},   {0x1880, 0x1884},   {0x1887, 0x18A8},
    {0x18AA, 0x18AA},   {0x18B0, 0x18F5},   {0x1900, 0x191E},   {0x1946, 0x196D},
    {0x1970, 0x1974},   {0x1980, 0x19AB},   {0x19B0, 0x19C9},   {0x19D0, 0x19D9},
    {0x1A00, 0x1A16},   {0x1A20, 0x1A54},   {0x1A80, 0x1A89},   {0x1A90, 0x1A99},
    {0x1AA7, 0x1AA7},   {0x1B05, 0x1B33},   {0x1B45, 0x1B4C},   {0x1B50, 0x1B59},
    {0x1B83, 0x1BA0},   {0x1BAE, 0x1BE5},   {0x1C00, 0x1C23},   {0x1C40, 0x1C49},
    {0x1C4D, 0x1C7D},   {0x1C80, 0x1C88},   {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},
    {0x1CE9, 0x1CEC},   {0x1CEE, 0x1CF3},   {0x1CF5, 0x1CF6},   {0x1CFA, 0x1CFA},
    {0x1D00, 0x1DBF},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2071, 0x2071},   {0x207F, 0x207F},   {0x2090, 0x209C},   {0x2102, 0x2102},
    {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},
    {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},   {0x212A, 0x212D},
    {0x212F, 0x2139},   {0x213C, 0x213F},   {0x2145, 0x2149},   {0x214E, 0x214E},
    {0x2183, 0x2184},   {0x2C00, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},
    {0x2D00, 0x2D25},   {0x2D27, 0x2D27},   {0x2D2D, 0x2D2D},   {0x2D30, 0x2D67},
    {0x2D6F, 0x2D6F},   {0x2D80, 0x2D96},   {0x2DA0, 0x2DA6},   {0x2DA8, 0x2DAE},
    {0x2DB0, 0x2DB6},   {0x2DB8, 0x2DBE},   {0x2DC0, 0x2DC6},   {0x2DC8, 0x2DCE},
    {0x2DD0, 0x2DD6},   {0x2DD8, 0x2DDE},   {0x2E2F, 0x2E2F},   {0x3005, 0x3006},
    {0x3031, 0x3035},   {0x303B, 0x303C},   {0x3041, 0x3096},   {0x309D, 0x309F},
    {0x30A1, 0x30FA},   {0x30FC, 0x30FF},   {0x3105, 0x312F},   {0x3131, 0x318E},
    {0x31A0, 0x31BF},   {0x31F0, 0x31FF},   {0x3400, 0x4DBF},   {0x4E00, 0xA48C},
    {0xA4D0, 0xA4FD},   {0xA500, 0xA60C},   {0xA610, 0xA62B},   {0xA640, 0xA66E},
    {0xA67F, 0xA69D},   {0xA6A0, 0xA6E5},   {0xA717, 0xA71F},   {0xA722, 0xA788},
    {0xA78B, 0xA7CA},   {0xA7D0, 0xA7D1},   {0xA7D3, 0xA7D3},   {0xA7D5, 0xA7D9},
    {0xA7F2, 0xA801},   {0xA803, 0xA805},   {0xA807, 0xA80A},   {0xA80C, 0xA822},
    {0xA840, 0xA873},   {0xA882, 0xA8B3},   {0xA8D0, 0xA8D9},   {0xA8F2, 0xA8F7},
    {0xA8FB, 0xA8FB},   {0xA8FD, 0xA8FE},   {0xA900, 0xA925},   {0xA930, 0xA946},
    {0xA960, 0xA97C},   {0xA984, 0xA9B2},   {0xA9CF, 0xA9D9},   {0xA9E0, 0xA9E4},
    {0xA9E6, 0xA9FE},   {0xAA00, 0xAA28},   {0xAA40, 0xAA42},   {0xAA44, 0xAA4B},
    {0xAA50, 0xAA59},   {0xAA60, 0xAA76},   {0xAA7A, 0xAA7A},   {0xAA7E, 0xAAAF},
    {0xAAB1, 0xAAB1},   {0xAAB5, 0xAAB6},   {0xAAB9, 0xAABD},   {0xAAC0, 0xAAC0},
    {0xAAC2, 0xAAC2},   {0xAADB, 0xAADD},   {0xAAE0, 0xAAEA},   {0xAAF2, 0xAAF4},
    {0xAB01, 0xAB06},   {0xAB09, 0xAB0E},   {0xAB11, 0xAB16},   {0xAB20, 0xAB26},
    {0xAB28, 0xAB2E},   {0xAB30, 0xAB5A},   {0xAB5C, 0xAB69},   {0xAB70, 0xABE2},
    {0xABF0, 0xABF9},   {0xAC00, 0xD7A3},   {0xD7B0, 0xD7C6},   {0xD7CB, 0xD7FB},
    {0xF900, 0xFA6D},   {0xFA70, 0xFAD9},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFB1D, 0xFB1D},   {0xFB1F, 0xFB28},   {0xFB2A, 0xFB36},   {0xFB38, 0xFB3C},
    {0xFB3E, 0xFB3E},   {0xFB40, 0xFB41},   {0xFB43, 0xFB44},   {0xFB46, 0xFBB1},
    {0xFBD3, 0xFD3D},   {0xFD50, 0xFD8F},   {0xFD92, 0xFDC7},   {0xFDF0, 0xFDFB},
    {0xFE70, 0xFE74},   {0xFE76, 0xFEFC},   {0xFF10, 0xFF19},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0xFF66, 0xFFBE},   {0xFFC2, 0xFFC7},   {0xFFCA, 0xFFCF},
    {0xFFD2, 0xFFD7},   {0xFFDA, 0xFFDC},   {0x10000, 0x1000B}, {0x1000D, 0x10026},
    {0x10028, 0x1003A}, {0x1003C, 0x1003D}, {0x1003F, 0x1004D}, {0x10050, 0x1005D},
    {0x10080, 0x100FA}, {0x10280, 0x1029C}, {0x102A0, 0x102D0}, {0x10300, 0x1031F},
    {0x1032D, 0x10340}, {0x10342, 0x10349}, {0x10350, 0x10375}, {0x10380, 0x1039D},
    {0x103A0, 0x103C3}, {0x103C8, 0x103CF}, {0x10400, 0x1049D}, {0x104A0, 0x104A9},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10500, 0x10527}, {0x10530, 0x10563},
    {0x10570, 0x1057A}, {0x1057C, 0x1058A}, {0x1058C, 0x10592}, {0x10594, 0x10595},
    {0x10597, 0x105A1}, {0x105A3, 0x105B1}, {0x105B3, 0x105B9}, {0x105BB, 0x105BC},
    {0x10600, 0x10736}, {0x10740, 0x10755}, {0x10760, 0x10767}, {0x10780, 0x10785},
    {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x10800, 0x10805}, {0x10808, 0x10808},
    {0x1080A, 0x10835}, {0x10837, 0x10838}, {0x1083C, 0x1083C}, {0x1083F, 0x10855},
    {0x10860, 0x10876}, {0x10880, 0x1089E}, {0x108E0, 0x108F2}, {0x108F4, 0x108F5},
    {0x10900, 0x10915}, {0x10920, 0x10939}, {0x10980, 0x109B7}, {0x109BE, 0x109BF},
    {0x10A00, 0x10A00}, {0x10A10, 0x10A13}, {0x10A15, 0x10A17}, {0x10A19, 0x10A35},
    {0x10A60, 0x10A7C}, {0x10A80, 0x10A9C}, {0x10AC0, 0x10AC7}, {0x10AC9, 0x10AE4},
    {0x10B00, 0x10B35}, {0x10B40, 0x10B55}, {0x10B60, 0x10B72}, {0x10B80, 0x10B91},
    {0x10C00, 0x10C48}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x10D00, 0x10D23},
    {0x10D30, 0x10D39}, {0x10E80, 0x10EA9}, {0x10EB0, 0x10EB1}, {0x10F00, 0x10F1C},
    {0x10F27, 0x10F27}, {0x10F30, 0x10F45}, {0x10F70, 0x10F81}, {0x10FB0, 0x10FC4},
    {0x10FE0, 0x10FF6}, {0x11003, 0x11037}, {0x11066, 0x1106F}, {0x11071, 0x11072},
    {0x11075, 0x11075}, {0x11083, 0x110AF}, {0x110D0, 0x110E8}, {0x110F0, 0x110F9},
    {0x11103, 0x11126}, {0x11136, 0x1113F}, {0x11144, 0x11144}, {0x11147, 0x11147},
    {0x11150, 0x11172}, {0x11176, 0x11176}, {0x11183, 0x111B2}, {0x111C1, 0x111C4},
    {0x111D0, 0x111DA}, {0x111DC, 0x111DC}, {0x11200, 0x11211}, {0x11213, 0x1122B},
    {0x1123F, 0x11240}, {0x11280, 0x11286}, {0x11288, 0x11288}, {0x1128A, 0x1128D},
    {0x1128F, 0x1129D}, {0x1129F, 0x112A8}, {0x112B0, 0x112DE}, {0x112F0, 0x112F9},
    {0x11305, 0x1130C}, {0x1130F, 0x11310}, {0x11313, 0x11328}, {0x1132A, 0x11330},
    {0x11332, 0x11333}, {0x11335, 0x11339}, {0x1133D, 0x1133D}, {0x11350, 0x11350},
    {0x1135D, 0x11361}, {0x11400, 0x11434}, {0x11447, 0x1144A}, {0x11450, 0x11459},
    {0x1145F, 0x11461}, {0x11480, 0x114AF}, {0x114C4, 0x114C5}, {0x114C7, 0x114C7},
    {0x114D0, 0x114D9}, {0x11580, 0x115AE}, {0x115D8, 0x115DB}, {0x11600, 0x1162F},
    {0x11644, 0x11644}, {0x11650, 0x11659}, {0x11680, 0x116AA}, {0x116B8, 0x116B8},
    {0x116C0, 0x116C9}, {0x11700, 0x1171A}, {0x11730, 0x11739}, {0x11740, 0x11746},
    {0x11800, 0x1182B}, {0x118A0, 0x118E9}, {0x118FF, 0x11906}, {0x11909, 0x11909},
    {0x1190C, 0x11913}, {0x11915, 0x11916}, {0x11918, 0x1192F}, {0x1193F, 0x1193F},
    {0x11941, 0x11941}, {0x11950, 0x11959}, {0x119A0, 0x119A7}, {0x119AA, 0x119D0},
    {0x119E1, 0x119E1}, {0x119E3, 0x119E3}, {0x11A00, 0x11A00}, {0x11A0B, 0x11A32},
    {0x11A3A, 0x11A3A}, {0x11A50, 0x11A50}, {0x11A5C, 0x11A89}, {0x11A9D, 0x11A9D},
    {0x11AB0, 0x11AF8}, {0x11C00, 0x11C08}, {0x11C0A, 0x11C2E}, {0x11C40, 0x11C40},
    {0x11C50, 0x11C59}, {0x11C72, 0x11C8F}, {0x11D00, 0x11D06}, {0x11D08, 0x11D09},
    {0x11D0B, 0x11D30}, {0x11D46, 0x11D46}, {0x11D50, 0x11D59}, {0x11D60, 0x11D65},
    {0x11D67, 0x11D68}, {0x11D6A, 0x11D89}, {0x11D98, 0x11D98}, {0x11DA0, 0x11DA9},
    {0x11EE0, 0x11EF2}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33},
    {0x11F50, 0x11F59}, {0x11FB0, 0x11FB0}, {0x12000, 0x12399}, {0x12480, 0x12543},
    {0x12F90, 0x12FF0}, {0x13000, 0x1342F}, {0x13441, 0x13446}, {0x14400, 0x14646},
    {0x16800, 0x16A38}, {0x16A40, 0x16A5E}, {0x16A60, 0x16A69}, {0x16A70, 0x16ABE},
    {0x16AC0, 0x16AC9}, {0x16AD0, 0x16AED}, {0x16B00, 0x16B2F}, {0x16B40, 0x16B43},
    {0x16B50, 0x16B59}, {0x16B63, 0x16B77}, {0x16B7D, 0x16B8F}, {0x16E40, 0x16E7F},
    {0x16F00, 0x16F4A}, {0x16F50, 0x16F50}, {0x16F93, 0x16F9F}, {0x16FE0, 0x16FE1},
    {0x16FE3, 0x16FE3}, {0x17000, 0x187F7}, {0x18800, 0x18CD5}, {0x18D00, 0x18D08},
    {0x1AFF0, 0x1AFF3}, {0x1AFF5, 0x1AFFB}, {0x1AFFD, 0x1AFFE}, {0x1B000, 0x1B122},
    {0x1B132, 0x1B132}, {0x1B150, 0x1B152}, {0x1B155, 0x1B155}, {0x1B164, 0x1B167},
    {0x1B170, 0x1B2FB}, {0x1BC00, 0x1BC6A}, {0x1BC70, 0x1BC7C}, {0x1BC80, 0x1BC88},
    {0x1BC90, 0x1BC99}, {0x1D400, 0x1D454}, {0x1D456, 0x1D49C}, {0x1D49E, 0x1D49F},
    {0x1D4A2, 0x1D4A2}, {0x1D4A5, 0x1D4A6}, {0x1D4A9, 0x1D4AC}, {0x1D4AE, 0x1D4B9},
    {0x1D4BB, 0x1D4BB}, {0x1D4BD, 0x1D4C3}, {0x1D4C5, 0x1D505}, {0x1D507, 0x1D50A},
    {0x1D50D, 0x1D514}, {0x1D516, 0x1D51C}, {0x1D51E, 0x1D539}, {0x1D53B, 0x1D53E},
    {0x1D540, 0x1D544}, {0x1D546, 0x1D546}, {0x1D54A, 0x1D550}, {0x1D552, 0x1D6A5},
    {0x1D6A8, 0x1D6C0}, {0x1D6C2, 0x1D6DA}, {0x1D6DC, 0x1D6FA}, {0x1D6FC, 0x1D714},
    {0x1D716, 0x1D734}, {0x1D736, 0x1D74E}, {0x1D750, 0x1D76E}, {0x1D770, 0x1D788},
    {0x1D78A, 0x1D7A8}, {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB}, {0x1D7CE, 0x1D7FF},
    {0x1DF00, 0x1DF1E}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E100, 0x1E12C},
    {0x1E137, 0x1E13D}, {0x1E140, 0x1E149}, {0x1E14E, 0x1E14E}, {0x1E290, 0x1E2AD},
    {0x1E2C0, 0x1E2EB}, {0x1E2F0, 0x1E2F9}, {0x1E4D0, 0x1E4EB}, {0x1E4F0, 0x1E4F9},
    {0x1E7E0, 0x1E7E6}, {0x1E7E8, 0x1E7EB}, {0x1E7ED, 0x1E7EE}, {0x1E7F0, 0x1E7FE},
    {0x1E800, 0x1E8C4}, {0x1E900, 0x1E943}, {0x1E94B, 0x1E94B}, {0x1E950, 0x1E959},
    {0x1EE00, 0x1EE03}, {0x1EE05, 0x1EE1F}, {0x1EE21, 0x1EE22}, {0x1EE24, 0x1EE24},
    {0x1EE27, 0x1EE27}, {0x1EE29, 0x1EE32}, {0x1EE34, 0x1EE37}, {0x1EE39, 0x1EE39},
    {0x1EE3B, 0x1EE3B}, {0x1EE42, 0x1EE42}, {0x1EE47, 0x1EE47}, {0x1EE49, 0x1EE49},
    {0x1EE4B, 0x1EE4B}, {0x1EE4D, 0x1EE4F}, {0x1EE51, 0x1EE52}, {0x1EE54, 0x1EE54},
    {0x1EE57, 0x1EE57}, {0x1EE59, 0x1EE59}, {0x1EE5B, 0x1EE5B}, {0x1EE5D, 0x1EE5D},
    {0x1EE5F, 0x1EE5F}, {0x1EE61, 0x1EE62}, {0x1EE64, 0x1EE64}, {0x1EE67, 0x1EE6A},
    {0x1EE6C, 0x1EE72}, {0x1EE74, 0x1EE77}, {0x1EE79, 0x1EE7C}, {0x1EE7E, 0x1EE7E},
    {0x1EE80, 0x1EE89}, {0x1EE8B, 0x1EE9B}, {0x1EEA1, 0x1EEA3}, {0x1EEA5, 0x1EEA9},
    {0x1EEAB, 0x1EEBB}, {0x1FBF0, 0x1FBF9}, {0x20000, 0x2A6DF}, {0x2A700, 0x2B739},
    {0x2B740, 0x2B81D}, {0x2B820, 0x2CEA1}, {0x2CEB0, 0x2EBE0}, {0x2F800, 0x2FA1D},
    {0x30000, 0x3134A}, {0x31350, 0x323AF},
}};

bool is_format_or_private_use(char32_t r) {
    return in_ranges(kFormatOrPrivateUse, r);
}
bool is_letter_or_digit_beyond_ascii(char32_t r) {
    return in_ranges(kLettersAndDigits, r);
}

} // namespace

} // namespace ls::router::matrix

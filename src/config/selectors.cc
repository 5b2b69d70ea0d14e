// `selectors`: virtual model ids (pin, warm, spillover) with the original's rules: no empty
// names, no collision with a model id or alias, no chaining, every target known, spillover
// targets able to run together. Messages are the original's, with file:line:col.
#include <algorithm>
#include <set>

#include "config/loader.h"
#include "router/matrix.h"

namespace ls::config::detail {

namespace {
std::string trimmed(const std::string& s) {
    const char* blanks = " \t\n\r\v\f";
    const size_t b = s.find_first_not_of(blanks);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(blanks) - b + 1);
}
} // namespace

Result<void> Loader::decode_selectors(const Node& v, const Scope& scope) {
    namespace mx = router::matrix;
    auto pairs = pairs_of(v, "selectors");
    if (!pairs) return pairs.error();
    std::set<std::string> ids;
    for (auto [kn, value] : pairs.value()) ids.insert(kn->value);
    for (auto [kn, value] : pairs.value()) {
        SelectorConfig sel;
        sel.id = kn->value;
        const std::string at = "selectors." + sel.id;
        if (trimmed(sel.id).empty()) return err(*kn, "selectors: selector names cannot be empty");
        if (cfg_.models.count(sel.id))
            return err(*kn, at + ": name conflicts with model ID " + mx::go_quote(sel.id));
        if (cfg_.aliases.count(sel.id))
            return err(*kn, at + ": name conflicts with model alias " + mx::go_quote(sel.id));
        std::vector<Pair> sp;
        if (!is_null(*value)) {
            auto p = pairs_of(*value, at);
            if (!p) return p.error();
            sp = std::move(p.value());
        }
        const Node* strategy = nullptr;
        const Node* targets = nullptr;
        const Node* spillover = nullptr;
        for (auto [k, val] : sp) {
            if (!known_key(*k, {"strategy", "targets", "settings", "name", "description",
                                "unlisted", "metadata"}) ||
                is_null(*val))
                continue;
            const std::string key = at + "." + k->value;
            if (k->value == "strategy") {
                strategy = val;
            } else if (k->value == "targets") {
                targets = val;
            } else if (k->value == "settings") {
                auto settings = pairs_of(*val, key);
                if (!settings) return settings.error();
                for (auto [sk, sv] : settings.value())
                    if (known_key(*sk, {"spillover"}) && !is_null(*sv)) spillover = sv;
            } else if (k->value == "unlisted") {
                auto b = get_bool(*val, key, scope);
                if (!b) return b.error();
                sel.unlisted = b.value();
            } else if (k->value == "metadata") {
                size_t budget = kMaxJsonValues;
                auto json = to_json(*val, key, scope, 0, budget, *val);
                if (!json) return json.error();
                sel.metadata_json = json_text(json.value().get());
            } else {
                auto s = get_string(*val, key, scope);
                if (!s) return s.error();
                (k->value == "name" ? sel.name : sel.description) = trimmed(s.value());
            }
        }
        std::string strategy_name;
        if (strategy) {
            auto s = get_string(*strategy, at + ".strategy", scope);
            if (!s) return s.error();
            strategy_name = s.value();
        }
        if (strategy_name.empty())
            return err(strategy ? *strategy : *kn, at + ".strategy is required");
        if (strategy_name == "pin")
            sel.strategy = SelectorStrategy::Pin;
        else if (strategy_name == "warm")
            sel.strategy = SelectorStrategy::Warm;
        else if (strategy_name == "spillover")
            sel.strategy = SelectorStrategy::Spillover;
        else
            return err(*strategy, at + ".strategy: unknown strategy " +
                                      mx::go_quote(strategy_name) +
                                      " (valid: warm, pin, spillover)");
        std::vector<const Node*> items;
        if (targets) {
            auto list = get_list(*targets, at + ".targets");
            if (!list) return list.error();
            items = std::move(list.value());
        }
        if (items.empty())
            return err(targets ? *targets : *kn, at + ".targets must contain at least one entry");
        for (size_t i = 0; i < items.size(); ++i) {
            const std::string key = at + ".targets[" + std::to_string(i) + "]";
            auto t = get_string(*items[i], key, scope);
            if (!t) return t.error();
            if (ids.count(t.value()))
                return err(*items[i], key + " references selector " + mx::go_quote(t.value()) +
                                          "; selector chaining is not supported");
            // A local model (id or alias) or a peer's ("peer/model", or a bare name only one
            // peer has): models[] holds the id, or the peer model's full name.
            std::string resolved;
            if (const ModelConfig* m = cfg_.resolve(t.value())) {
                resolved = m->id;
            } else if (auto pr = cfg_.resolve_peer(t.value())) {
                if (sel.strategy == SelectorStrategy::Warm)
                    return err(*items[i], key + " must resolve to a local model for strategy "
                                                "\"warm\"");
                resolved = pr->fqn();
            } else {
                return err(*items[i], key + " references unknown model " + mx::go_quote(t.value()));
            }
            if (sel.strategy == SelectorStrategy::Spillover &&
                std::find(sel.models.begin(), sel.models.end(), resolved) != sel.models.end())
                return err(*items[i], at + ".targets contains duplicate resolved model " +
                                          mx::go_quote(resolved));
            sel.targets.push_back(t.value());
            sel.models.push_back(resolved);
        }
        if (sel.strategy == SelectorStrategy::Spillover) {
            if (spillover) {
                auto n = get_int(*spillover, at + ".settings.spillover", scope);
                if (!n) return n.error();
                if (n.value() < 1) return err(*spillover, at + ".settings.spillover must be >= 1");
                sel.spillover = static_cast<int>(n.value());
            }
            if (auto r = check_spillover_coexistence(sel, *targets); !r) return r;
        }
        cfg_.selectors.emplace(sel.id, std::move(sel));
    }
    return {};
}

// Spillover runs several targets at once: they must be able to run together.
Result<void> Loader::check_spillover_coexistence(const SelectorConfig& spill, const Node& at) {
    SelectorConfig sel = spill; // only the local targets must run together
    sel.models.clear();
    for (const auto& m : spill.models)
        if (cfg_.models.count(m)) sel.models.push_back(m);
    if (sel.models.size() < 2) return {};
    const std::string name = "selectors." + sel.id;
    if (cfg_.routing.router == RouterKind::Matrix) {
        if (!router::matrix::can_contain_all(*cfg_.routing.matrix.program, sel.models))
            return err(at, name + ".targets must all appear together in one expanded matrix set");
        return {};
    }
    const GroupConfig* g = cfg_.group_of(sel.models[0]);
    if (!g)
        return err(at, name + " target " + router::matrix::go_quote(sel.models[0]) +
                           " is not in a routing group");
    if (g->swap) return err(at, name + " spillover targets must share a group with swap: false");
    for (const auto& m : sel.models)
        if (cfg_.group_of(m) != g)
            return err(at, name + " spillover targets must share one routing group");
    return {};
}

} // namespace ls::config::detail

// `routing` (router: group or matrix, scheduler: fifo with priorities and our starvation
// bound), and the original's legacy top-level `groups` and `matrix`, normalised into
// Config::routing and Config::groups as the original does (spec: routing.router wins, the two
// places may not be mixed).
#include <algorithm>
#include <map>

#include "config/loader.h"
#include "router/matrix.h"

namespace ls::config::detail {

namespace {
bool is_empty_mapping(const Node& n) {
    return n.kind == Node::Kind::Mapping && n.pairs.empty();
}
} // namespace

// `groups` (top level) or `routing.router.settings.groups`; `path` names it in messages.
Result<void> Loader::decode_groups(const Node& v, const std::string& path, const Scope& scope) {
    auto pairs = pairs_of(v, path);
    if (!pairs) return pairs.error();
    std::map<std::string, std::string> group_of_model;
    for (auto [kn, value] : pairs.value()) {
        GroupConfig g;
        g.id = kn->value;
        const std::string prefix = "group '" + g.id + "': ";
        if (g.id.empty()) return err(*kn, "empty group id");
        if (g.id == "(default)")
            return err(*kn, "group id '(default)' is reserved (it holds the models of no group)");
        const Scope gscope{prefix, scope.ctx};
        std::vector<Pair> gpairs;
        if (!is_null(*value)) {
            auto p = pairs_of(*value, path + "." + g.id);
            if (!p) return p.error();
            gpairs = std::move(p.value());
        }
        for (auto [gk, gv] : gpairs) {
            const std::string& k = gk->value;
            if (!known_key(*gk, {"swap", "exclusive", "persistent", "members"})) continue;
            if (is_null(*gv)) continue;
            if (k == "members") {
                auto items = get_list(*gv, k);
                if (!items) return items.error();
                for (const Node* item : items.value()) {
                    auto s = get_string(*item, k, gscope);
                    if (!s) return s.error();
                    // An alias names its model (the original would start a second process).
                    const ModelConfig* m = cfg_.resolve(s.value());
                    if (!m) return err(*item, prefix + "unknown model '" + s.value() + "'");
                    const std::string& id = m->id;
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
                auto b = get_bool(*gv, k, gscope);
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

// `matrix` or `routing.router.settings.matrix`: vars, evict_costs, sets compiled into a
// program. Messages carry the original's "matrix: " prefix.
Result<void> Loader::decode_matrix(const Node& v, const std::string& path, const Scope& scope) {
    namespace mx = router::matrix;
    MatrixConfig& mc = cfg_.routing.matrix;
    auto pairs = pairs_of(v, path);
    if (!pairs) return pairs.error();
    const Node* vars = nullptr;
    const Node* costs = nullptr;
    const Node* sets = nullptr;
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"vars", "evict_costs", "sets"})) continue;
        if (is_null(*value)) continue;
        (kn->value == "vars" ? vars : kn->value == "evict_costs" ? costs : sets) = value;
    }
    std::map<std::string, std::string, std::less<>> var_models;
    if (vars) {
        auto vp = pairs_of(*vars, path + ".vars");
        if (!vp) return vp.error();
        for (auto [kn, value] : vp.value()) {
            if (!mx::valid_var_key(kn->value))
                return err(*kn, "matrix: " + mx::invalid_var_key_message(kn->value));
            auto model = get_string(*value, path + ".vars." + kn->value, scope);
            if (!model) return model.error();
            if (!cfg_.models.count(model.value())) // a model id: aliases are not accepted
                return err(*value,
                           "matrix: " + mx::unknown_var_model_message(kn->value, model.value()));
            var_models[kn->value] = model.value();
            mc.vars.emplace_back(kn->value, model.value());
        }
    }
    auto resolve = mx::make_resolver(
        var_models, [this](std::string_view id) { return cfg_.models.count(std::string(id)) > 0; });
    if (costs) {
        auto cp = pairs_of(*costs, path + ".evict_costs");
        if (!cp) return cp.error();
        for (auto [kn, value] : cp.value()) {
            auto n = get_int(*value, path + ".evict_costs." + kn->value, scope,
                             std::numeric_limits<long long>::min(),
                             std::numeric_limits<long long>::max());
            if (!n) return n.error();
            const std::optional<std::string> model = resolve(kn->value);
            if (auto e = mx::evict_cost_error(kn->value, n.value(), model.has_value()))
                return err(model ? *value : *kn, "matrix: " + *e);
            mc.evict_costs[*model] = n.value();
        }
    }
    std::vector<mx::SetDef> defs;
    std::vector<const Node*> set_nodes;
    if (sets) {
        if (sets->kind != Node::Kind::Mapping) return err(*sets, "matrix: sets must be a mapping");
        auto sp = pairs_of(*sets, path + ".sets");
        if (!sp) return sp.error();
        for (auto [kn, value] : sp.value()) {
            auto dsl = is_null(*value) ? Result<std::string>(std::string())
                                       : get_string(*value, path + ".sets." + kn->value, scope);
            if (!dsl) return dsl.error();
            defs.push_back({kn->value, dsl.value()});
            set_nodes.push_back(value);
            mc.sets.emplace_back(kn->value, dsl.value());
        }
    }
    if (defs.empty()) return err(sets ? *sets : v, "matrix: matrix must define at least one set");
    auto program = mx::compile(defs, resolve);
    if (!program) {
        // The message names the set it is about first: point at that set's expression.
        const std::string& msg = program.error().message;
        const Node* at = sets;
        size_t best = std::string::npos;
        for (size_t i = 0; i < defs.size(); ++i) {
            const size_t found = msg.find("set " + mx::go_quote(defs[i].name));
            if (found < best) {
                best = found;
                at = set_nodes[i];
            }
        }
        return err(*at, "matrix: " + msg);
    }
    mc.program = std::make_shared<const mx::Program>(std::move(program.value()));
    cfg_.routing.router = RouterKind::Matrix;
    return {};
}

// `routing.scheduler`: `use: fifo` and `settings.fifo` (priority, and our maxWait/maxSkips).
Result<void> Loader::decode_scheduler(const Node& v, const Scope& scope) {
    SchedulerConfig& sc = cfg_.routing.scheduler;
    auto pairs = pairs_of(v, "routing.scheduler");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"use", "settings"}) || is_null(*value)) continue;
        if (kn->value == "use") {
            auto use = get_string(*value, "routing.scheduler.use", scope);
            if (!use) return use.error();
            if (!use.value().empty() && use.value() != "fifo")
                return err(*value, "routing.scheduler.use: unknown scheduler " +
                                       router::matrix::go_quote(use.value()) + " (valid: fifo)");
            continue;
        }
        auto settings = pairs_of(*value, "routing.scheduler.settings");
        if (!settings) return settings.error();
        for (auto [sk, sv] : settings.value()) {
            if (!known_key(*sk, {"fifo"}) || is_null(*sv)) continue;
            auto fifo = pairs_of(*sv, "routing.scheduler.settings.fifo");
            if (!fifo) return fifo.error();
            for (auto [fk, fv] : fifo.value()) {
                if (!known_key(*fk, {"priority", "maxWait", "maxSkips"}) || is_null(*fv)) continue;
                const std::string key = "routing.scheduler.settings.fifo." + fk->value;
                if (fk->value == "maxWait") {
                    auto d = get_double(*fv, key, scope);
                    if (!d) return d.error();
                    if (d.value() < 0) return err(*fv, key + " must be >= 0 (0: no bound)");
                    sc.max_wait_s = d.value();
                } else if (fk->value == "maxSkips") {
                    auto n = get_int(*fv, key, scope, 0, 1000000);
                    if (!n) return n.error();
                    sc.max_skips = static_cast<int>(n.value());
                } else {
                    auto prio = pairs_of(*fv, key);
                    if (!prio) return prio.error();
                    for (auto [pk, pv] : prio.value()) {
                        const ModelConfig* m = cfg_.resolve(pk->value);
                        if (!m)
                            return err(*pk, key + " references unknown model " +
                                                router::matrix::go_quote(pk->value));
                        auto n = get_int(*pv, key + "." + pk->value, scope);
                        if (!n) return n.error();
                        if (sc.priority.count(m->id))
                            return err(*pk, key + ": model '" + m->id +
                                                "' is given a priority twice (an alias names it)");
                        sc.priority[m->id] = static_cast<int>(n.value());
                    }
                }
            }
        }
    }
    return {};
}

// Which router, from `routing.router` or the legacy top-level keys, and the groups of the
// group router with "(default)" holding every model of no group.
Result<void> Loader::decode_routing(const Node* routing, const Node* legacy_groups,
                                    const Node* legacy_matrix, const Scope& scope) {
    const bool has_top_level =
        legacy_matrix != nullptr || (legacy_groups && !is_empty_mapping(*legacy_groups));
    const Node* router = nullptr;
    const Node* use_node = nullptr;
    const Node* settings_groups = nullptr;
    const Node* settings_matrix = nullptr;
    std::string use;
    if (routing) {
        auto top = pairs_of(*routing, "routing");
        if (!top) return top.error();
        for (auto [kn, value] : top.value()) {
            if (!known_key(*kn, {"router", "scheduler"}) || is_null(*value)) continue;
            if (kn->value == "scheduler") {
                if (auto r = decode_scheduler(*value, scope); !r) return r;
            } else {
                router = value;
            }
        }
    }
    if (router) {
        auto rp = pairs_of(*router, "routing.router");
        if (!rp) return rp.error();
        for (auto [kn, value] : rp.value()) {
            if (!known_key(*kn, {"use", "settings"})) continue;
            if (kn->value == "use" && !is_null(*value)) {
                auto u = get_string(*value, "routing.router.use", scope);
                if (!u) return u.error();
                use = u.value();
                use_node = value;
            } else if (kn->value == "settings" && !is_null(*value)) {
                auto sp = pairs_of(*value, "routing.router.settings");
                if (!sp) return sp.error();
                for (auto [sk, sv] : sp.value())
                    if (known_key(*sk, {"groups", "matrix"}))
                        (sk->value == "groups" ? settings_groups : settings_matrix) =
                            is_null(*sv) ? nullptr : sv;
            }
        }
    }
    const bool has_routing =
        !use.empty() || settings_matrix || (settings_groups && !is_empty_mapping(*settings_groups));
    if (has_top_level && has_routing)
        return err(*routing,
                   "config uses both the legacy top-level 'matrix'/'groups' keys and the new "
                   "'routing.router' block; please migrate the top-level keys into "
                   "'routing.router' and remove them");

    const Node* groups = nullptr;
    const Node* matrix = nullptr;
    std::string groups_path = "groups", matrix_path = "matrix";
    if (has_top_level) {
        groups = legacy_groups;
        matrix = legacy_matrix;
        if (groups && matrix && !is_empty_mapping(*groups))
            return err(*matrix, "config cannot use both 'groups' and 'matrix'");
    } else if (use == "matrix") {
        if (!settings_matrix)
            return err(*use_node, "routing.router.use is 'matrix' but "
                                  "routing.router.settings.matrix is not set");
        matrix = settings_matrix;
        matrix_path = "routing.router.settings.matrix";
        // The original ignores the other one without a word; say so.
        if (settings_groups)
            warn(*settings_groups, "routing.router.settings.groups is ignored: "
                                   "routing.router.use is 'matrix'");
    } else if (use.empty() || use == "group") {
        groups = settings_groups;
        groups_path = "routing.router.settings.groups";
        if (settings_matrix)
            warn(*settings_matrix,
                 use.empty() ? "routing.router.settings.matrix is ignored: routing.router.use "
                               "is not set and defaults to 'group' (set use: matrix)"
                             : "routing.router.settings.matrix is ignored: routing.router.use "
                               "is 'group'");
    } else {
        return err(*use_node, "routing.router.use: unknown router " +
                                  router::matrix::go_quote(use) + " (valid: group, matrix)");
    }

    if (matrix) return decode_matrix(*matrix, matrix_path, scope);
    cfg_.routing.router = RouterKind::Group;
    if (groups)
        if (auto r = decode_groups(*groups, groups_path, scope); !r) return r;
    GroupConfig def;
    def.id = "(default)";
    for (const auto& [id, m] : cfg_.models)
        if (!cfg_.group_of(id)) def.members.push_back(id);
    if (!def.members.empty()) cfg_.groups.push_back(std::move(def));
    return {};
}

} // namespace ls::config::detail

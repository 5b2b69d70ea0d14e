#include <map>

#include "config/loader.h"

namespace ls::config::detail {

// `groups`: which models may run together (the original's default router).
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
            if (!known_key(*gk, {"swap", "exclusive", "persistent", "members"})) continue;
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

} // namespace ls::config::detail

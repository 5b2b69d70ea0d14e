// `profiles` (named sets of pins switched at run time) and our `defaultProfile`. The original's
// rules: a mapping with `description` and `pins` (the old list form is refused), at least one
// pin, pins naming a model, an alias, a peer model or a selector (or "" / ~ to disable a
// name); pins do not chain.
#include "config/loader.h"
#include "router/matrix.h"

namespace ls::config::detail {

Result<void> Loader::decode_profiles(const Node& v, const Scope& scope) {
    namespace mx = router::matrix;
    auto pairs = pairs_of(v, "profiles");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        ProfileConfig p;
        p.id = kn->value;
        const std::string at = "profiles." + p.id;
        if (p.id.find_first_not_of(" \t\n\r\v\f") == std::string::npos)
            return err(*kn, "profiles: profile names cannot be empty");
        if (!is_null(*value) && value->kind != Node::Kind::Mapping)
            return err(*value, at + ": profile must be a mapping with description and pins; the "
                                    "legacy list syntax is no longer supported");
        std::vector<Pair> pp;
        if (!is_null(*value)) {
            auto r = pairs_of(*value, at);
            if (!r) return r.error();
            pp = std::move(r.value());
        }
        const Node* pins = nullptr;
        for (auto [k, val] : pp) {
            if (!known_key(*k, {"description", "pins"}) || is_null(*val)) continue;
            if (k->value == "pins") {
                pins = val;
                continue;
            }
            auto s = get_string(*val, at + ".description", scope);
            if (!s) return s.error();
            p.description = s.value();
        }
        std::vector<Pair> entries;
        if (pins) {
            auto r = pairs_of(*pins, at + ".pins");
            if (!r) return r.error();
            entries = std::move(r.value());
        }
        if (entries.empty())
            return err(pins ? *pins : *kn, at + ".pins must contain at least one entry");
        for (auto [pk, pv] : entries) {
            if (pk->value.find_first_not_of(" \t\n\r\v\f") == std::string::npos)
                return err(*pk, at + ".pins: pin names cannot be empty");
            std::string target;
            if (!is_null(*pv)) {
                auto s = get_string(*pv, at + ".pins." + pk->value, scope);
                if (!s) return s.error();
                target = s.value();
            }
            // A target is a model, an alias or a selector; never another pin.
            if (!target.empty() && !cfg_.resolve(target) && !cfg_.selector(target) &&
                !cfg_.resolve_peer(target))
                return err(*pv, at + ".pins." + pk->value + " references unknown model " +
                                    mx::go_quote(target));
            p.pins[pk->value] = target;
        }
        cfg_.profiles.emplace(p.id, std::move(p));
    }
    return {};
}

Result<void> Loader::decode_default_profile(const Node& v, const Scope& scope) {
    auto name = get_string(v, "defaultProfile", scope);
    if (!name) return name.error();
    if (!name.value().empty() && !cfg_.profiles.count(name.value()))
        return err(v, "defaultProfile: unknown profile " + router::matrix::go_quote(name.value()));
    cfg_.default_profile = name.value();
    return {};
}

} // namespace ls::config::detail

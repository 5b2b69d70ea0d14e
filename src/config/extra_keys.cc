// The original's smaller top-level sections: `upstream` (ignorePaths), `ui`, `performance`,
// `store`. Each either works or says precisely why it has no effect here.
#include "config/loader.h"
#include "util/regex_list.h"

namespace ls::config::detail {

Result<void> Loader::decode_upstream(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "upstream");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"ignorePaths"}) || is_null(*value)) continue;
        auto items = get_list(*value, "upstream.ignorePaths");
        if (!items) return items.error();
        std::vector<std::string> patterns;
        for (const Node* item : items.value()) {
            auto s = get_string(*item, "upstream.ignorePaths", scope);
            if (!s) return s.error();
            auto one = RegexList::compile({s.value()});
            if (!one) return err(*item, "upstream.ignorePaths: " + one.error().message);
            patterns.push_back(s.value());
        }
        if (!patterns.empty()) cfg_.ignore_paths = std::move(patterns); // [] keeps the default
    }
    return {};
}

Result<void> Loader::decode_ui(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "ui");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"activity"}) || is_null(*value)) continue;
        auto activity = pairs_of(*value, "ui.activity");
        if (!activity) return activity.error();
        for (auto [ak, av] : activity.value()) {
            if (!known_key(*ak, {"session_id"})) continue;
            std::vector<std::string> headers; // [] (or null) turns the grouping off
            if (!is_null(*av)) {
                auto items = get_list(*av, "ui.activity.session_id");
                if (!items) return items.error();
                for (const Node* item : items.value()) {
                    auto s = get_string(*item, "ui.activity.session_id", scope);
                    if (!s) return s.error();
                    const std::string h = trim_blanks(s.value());
                    bool seen = h.empty();
                    for (const auto& e : headers) seen = seen || iequals(e, h);
                    if (!seen) headers.push_back(h);
                }
            }
            cfg_.ui_session_headers = std::move(headers);
        }
    }
    return {};
}

Result<void> Loader::decode_performance(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "performance");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"disabled", "every"}) || is_null(*value)) continue;
        if (kn->value == "disabled") {
            auto b = get_bool(*value, "performance.disabled", scope);
            if (!b) return b.error();
            cfg_.performance_disabled = b.value();
            continue;
        }
        auto text = get_string(*value, "performance.every", scope);
        if (!text) return text.error();
        auto seconds = parse_go_duration(text.value());
        if (!seconds)
            return err(*value, "performance.every: expected a duration like 15s or 1m30s, got '" +
                                   text.value() + "'");
        if (*seconds != 0 && *seconds < 5)
            return err(*value, "performance: every must be at least 5s, got " + text.value());
        cfg_.performance_every_s = *seconds == 0 ? 5 : *seconds;
    }
    return {};
}

Result<void> Loader::decode_store(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "store");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"path"})) continue;
        auto path = is_null(*value) ? Result<std::string>(std::string())
                                    : get_string(*value, "store.path", scope);
        if (!path) return path.error();
        if (trim_blanks(path.value()).empty()) return err(*value, "store.path must not be empty");
        cfg_.store_path = trim_blanks(path.value());
        warn(*value, "store.path: activity records are kept in memory only (the last "
                     "metricsMaxInMemory of them) and are not written to " +
                         cfg_.store_path);
    }
    return {};
}

} // namespace ls::config::detail

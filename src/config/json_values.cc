#include "config/loader.h"

namespace ls::config::detail {

// JSON-valued keys: `metadata`, `filters.setParams`, `filters.setParamsByID`.

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

} // namespace ls::config::detail

#include "config/config.h"

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

const char* to_string(SelectorStrategy s) {
    switch (s) {
    case SelectorStrategy::Pin:
        return "pin";
    case SelectorStrategy::Warm:
        return "warm";
    case SelectorStrategy::Spillover:
        return "spillover";
    }
    return "pin";
}

} // namespace ls::config

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

std::optional<PeerRoute> Config::resolve_peer(const std::string& name) const {
    for (const auto& [id, p] : peers)
        for (const auto& m : p.models)
            if (name.size() == id.size() + 1 + m.size() && name.compare(0, id.size(), id) == 0 &&
                name[id.size()] == '/' && name.compare(id.size() + 1, m.size(), m) == 0)
                return PeerRoute{&p, m};
    std::optional<PeerRoute> bare;
    for (const auto& [id, p] : peers)
        for (const auto& m : p.models)
            if (m == name) {
                if (bare && bare->peer != &p) return std::nullopt; // more than one peer has it
                bare = PeerRoute{&p, m};
            }
    return bare;
}

std::vector<std::string> Config::peers_offering(const std::string& bare) const {
    std::vector<std::string> out;
    for (const auto& [id, p] : peers)
        for (const auto& m : p.models)
            if (m == bare) out.push_back(id + "/" + m);
    if (out.size() < 2) out.clear();
    return out;
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

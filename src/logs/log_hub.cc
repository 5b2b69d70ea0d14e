#include "logs/log_hub.h"

#include <algorithm>

namespace ls::logs {

void LogHub::proxy_line(std::string_view line) {
    proxy_.push(line);
    combined_.push(line);
    publish(Source::Proxy, std::string(), line);
}

void LogHub::upstream_line(const std::string& model, std::string_view line) {
    upstream_.push(line);
    combined_.push(line);
    auto it = models_.find(model);
    if (it == models_.end()) it = models_.emplace(model, LineRing(ring_bytes_)).first;
    it->second.push(line);
    publish(Source::Model, model, line);
}

std::string LogHub::combined_history() const {
    return combined_.all_lines();
}

std::string LogHub::model_history(const std::string& model) const {
    auto it = models_.find(model);
    return it == models_.end() ? std::string() : it->second.all_lines();
}

void LogHub::unsubscribe(LogSubscriber* s) {
    subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), s),
                       subscribers_.end());
}

void LogHub::publish(Source source, const std::string& model, std::string_view line) {
    // A subscriber's write may log (e.g. a client error): never recurse into the fan-out.
    if (publishing_) return;
    publishing_ = true;
    const std::vector<LogSubscriber*> subs = subscribers_; // they may unsubscribe meanwhile
    for (LogSubscriber* s : subs)
        if (std::find(subscribers_.begin(), subscribers_.end(), s) != subscribers_.end())
            s->on_log_line(source, model, line);
    publishing_ = false;
}

} // namespace ls::logs

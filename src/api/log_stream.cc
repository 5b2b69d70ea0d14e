#include "api/log_stream.h"

namespace ls::api {

LogStreamExchange::LogStreamExchange(logs::LogHub& hub, http::Connection& conn, Filter filter,
                                     std::string model)
    : hub_(hub), conn_(&conn), filter_(filter), model_(std::move(model)) {}

LogStreamExchange::~LogStreamExchange() {
    hub_.unsubscribe(this);
}

void LogStreamExchange::start(bool send_history) {
    conn_->start_stream("text/plain; charset=utf-8");
    if (send_history) {
        std::string history;
        switch (filter_) {
        case Filter::All:
            history = hub_.combined_history();
            break;
        case Filter::Proxy:
            history = hub_.proxy_history();
            break;
        case Filter::Upstream:
            history = hub_.upstream_history();
            break;
        case Filter::Model:
            history = hub_.model_history(model_);
            break;
        }
        if (!history.empty() && !conn_->write_body(history.data(), history.size())) return;
    }
    hub_.subscribe(this);
}

void LogStreamExchange::on_log_line(logs::Source source, const std::string& model,
                                    std::string_view line) {
    if (!conn_) return;
    switch (filter_) {
    case Filter::All:
        break;
    case Filter::Proxy:
        if (source != logs::Source::Proxy) return;
        break;
    case Filter::Upstream:
        if (source == logs::Source::Proxy) return;
        break;
    case Filter::Model:
        if (source == logs::Source::Proxy || model != model_) return;
        break;
    }
    if (conn_->output_pending() > kMaxPending) {
        ++skipped_;
        return;
    }
    std::string out;
    if (skipped_ > 0) {
        out = "[llama-swap: " + std::to_string(skipped_) +
              " log lines skipped, the reader was too slow]\n";
        skipped_ = 0;
    }
    out.append(line);
    out.push_back('\n');
    conn_->write_body(out.data(), out.size());
}

void LogStreamExchange::on_client_writable() {}

void LogStreamExchange::on_client_gone() {
    conn_ = nullptr;
    hub_.unsubscribe(this);
}

void LogStreamExchange::on_shutdown() {
    // A log stream never ends by itself: end it cleanly so shutdown does not wait for it.
    hub_.unsubscribe(this);
    if (!conn_) return;
    http::Connection* c = conn_;
    conn_ = nullptr;
    c->end_response();
}

} // namespace ls::api

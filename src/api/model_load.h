// POST /api/models/load/<model>: starts a model as a request for it would (group rules,
// swaps and the queue apply), and answers once it is ready. The web UI's Load button uses it;
// unlike the original's GET /upstream/<model>/, it sends nothing to the upstream.
#pragma once

#include <string>

#include "http/connection.h"
#include "router/scheduler.h"

namespace ls::api {

class LoadExchange final : public http::Exchange, public router::Waiter {
public:
    LoadExchange(router::Scheduler& scheduler, http::Connection& conn, std::string model_id);
    ~LoadExchange() override;
    LoadExchange(const LoadExchange&) = delete;
    LoadExchange& operator=(const LoadExchange&) = delete;

    // Attaches a LoadExchange for `model_id` (a resolved id) to `conn` and asks for the model.
    static void start(router::Scheduler& scheduler, http::Connection& conn,
                      const std::string& model_id);

    void on_granted(supervisor::ModelProcess& process) override;
    void on_rejected(const router::Rejection& why) override;
    void on_client_gone() override;

private:
    router::Scheduler& scheduler_;
    http::Connection* conn_;
    std::string model_id_;
};

} // namespace ls::api

// One parsed HTTP request as the application sees it.
#pragma once

#include <cstdint>
#include <string>

#include "http/body.h"
#include "http/headers.h"

namespace ls::http {

struct Request {
    uint64_t id = 0; // unique per daemon run, for logs
    int method = 0;  // llhttp_method_t
    std::string method_name;
    std::string target; // raw request-target, e.g. "/v1/models?x=1"
    std::string path;   // target up to '?', not decoded
    std::string query;  // after '?', not decoded
    int version_major = 1;
    int version_minor = 1;
    HeaderList headers;
    bool keep_alive = true;
    bool expect_continue = false;
    bool has_body = false; // Content-Length > 0 or chunked
    // The body's declared Content-Length (0: none, or chunked).
    uint64_t content_length = 0;
    // All of the body is in `body`. Always true in Application::on_request; a request taken
    // by Application::dispatch_early sees its body grow (Exchange::on_request_body) until
    // this turns true.
    bool body_complete = true;
    // Connection: upgrade with an Upgrade header (a WebSocket handshake): the connection
    // becomes a tunnel if the answer is 101, and closes after any other answer.
    bool upgrade = false;
    Body body;
    double received_at = 0; // ev_now() when the head was complete
    std::string log_model;  // the model a proxied request went to (MODEL_ID in the journal)
    bool quiet = false;     // no access log line (a poller's health checks)
    bool debug_log = false; // the access log line at debug level (a scraper's polls)

    // As a new Request with this body, but the strings and the header list keep their
    // storage: a connection's next request is much like its last, and finds room in place.
    void reset(Body fresh_body);
};

// Value of query parameter `name` (percent-decoded), or false when absent.
bool query_param(std::string_view query, std::string_view name, std::string& out);
std::string percent_decode(std::string_view s);
// Everything but RFC 3986's unreserved characters as %XX (for a query value).
std::string percent_encode(std::string_view s);

} // namespace ls::http

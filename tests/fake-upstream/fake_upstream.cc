// fake-upstream: a small HTTP/1.1 server that behaves like llama.cpp's
// llama-server closely enough for llama-swap's integration tests. It can be
// told to load slowly, stream at a given token rate, crash, hang, ignore
// SIGTERM, leave a grandchild behind, and echo request bodies with a SHA-256
// so tests can prove the proxy forwards bytes exactly.
//
// Deliberately simple: blocking POSIX sockets and one thread per connection,
// or (--http-threads N) a fixed pool of N threads like llama-server's
// cpp-httplib. Further flags reproduce other llama-server habits: binding
// without SO_REUSEADDR, no TCP_NODELAY, its log lines, prompt-cache
// accounting and abort() on SIGTERM.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "websocket.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace {

constexpr size_t kMaxHeadBytes = size_t{64} * 1024;       // request line + headers
constexpr size_t kMaxJsonBody = size_t{64} * 1024 * 1024; // JSON API bodies are buffered
constexpr size_t kMaxEchoedBody = size_t{64} * 1024;      // /echo includes bodies up to this
constexpr size_t kIoChunk = size_t{64} * 1024;

const char* const kUsage = R"(usage: fake-upstream --port N [options]

A fake llama-server for tests. Options (--flag=value or --flag value):
  --port N                 port to listen on (required; 0 = pick one and print it)
  --host ADDR              address to bind (default 127.0.0.1)
  --model ID               model id reported in replies (default fake-model)
  --load-delay-ms N        answer 503 "Loading model" for N ms after start (default 0)
  --tokens N               tokens generated per completion (default 10)
  --tps R                  token rate per second, 0 = unlimited (default 0)
  --respond TEXT           text of every token (default hi)
  --crash-at-start         print a message and exit(3) before binding
  --crash-after-tokens N   _exit(4) after N tokens of a completion were produced
  --hang                   read requests but never answer anything
  --ignore-sigterm         ignore SIGTERM (only SIGKILL stops it)
  --fork-grandchild        fork a child that sleeps forever in our process group
  --pid-file PATH          append our pid (and the grandchild's) to PATH
  --notify-ready           send sd_notify STATUS=loading, then READY=1 to $NOTIFY_SOCKET
  --health-path PATH       health endpoint path (default /health)
  --log-lines N            stdout lines printed at start/ready (default 2)
  --exit-after-ms N        exit(5) by itself N ms after start
  --help                   show this help

llama-server imitations (all off by default):
  --http-threads N         serve connections from a fixed pool of N threads fed by
                           an unbounded FIFO of accepted connections, like
                           cpp-httplib; a thread keeps its connection until it is
                           idle --keepalive-ms, served --keepalive-max requests
                           or the client closes it (default 0 = one thread per
                           connection, no idle or request limit)
  --keepalive-ms N         with --http-threads: idle time that ends a kept-alive
                           connection (default 5000)
  --keepalive-max N        with --http-threads: requests per connection; the
                           last reply says "Connection: close" (default 100)
  --no-reuseaddr           bind without SO_REUSEADDR (so TIME-WAIT sockets block
                           the port); on failure print "main: couldn't bind HTTP
                           server socket, hostname: H, port: P" and exit(1)
  --no-nodelay             leave Nagle on (no TCP_NODELAY); a streamed reply
                           still sends its head and every chunk separately
  --llama-log              print llama-server's lines on stderr: after binding
                           "main: HTTP server is listening, hostname: H, port: P,
                           http threads: N" and "main: loading model"; once
                           loaded "main: server is listening on http://H:P -
                           starting the main loop" (instead of the stdout line
                           "fake-upstream: server is listening on ...")
  --report-threads N       "http threads" to print when --http-threads is 0
                           (default 4)
  --parallel N             N slots: at most N completions or embeddings are
                           processed at once; the others wait for a slot while
                           holding their HTTP thread (default 0 = no limit)
  --bind-fail-once PATH    fail to bind, as if another process took the port
                           first, unless PATH exists (it is created, so only the
                           first start fails): prints llama-server's "couldn't
                           bind" line and exits 1
  --bind-fail-always       fail to bind like that on every start
  --prompt-cache           reuse the previous completion's prompt: when the new
                           prompt starts with it, timings.prompt_n counts only
                           the new tokens (at least 1), timings.cache_n and
                           usage.prompt_tokens_details.cached_tokens the rest,
                           usage.prompt_tokens all of them
  --no-cache-n             omit timings.cache_n and prompt_tokens_details
                           (older builds)
  --stall-after-tokens N   wedge after N tokens of every completion (0: before the
                           response head), like a llama-server whose main loop hangs
                           (GPU fault, deadlock): that request, every later completion
                           or embedding and GET /slots then wait forever, while
                           /health still answers 200 (it does not go through the main
                           loop). ?stall_after_tokens=N on one POST does it for that
                           request only
  --no-slots               GET /slots answers 501, like llama-server --no-slots
  --sigterm-abort          on SIGTERM print "fake-upstream: SIGTERM, aborting"
                           and abort() (dies by SIGABRT; core dumps disabled)

Endpoints: GET /health, GET /v1/models, GET /slots, POST /v1/chat/completions,
POST /v1/completions, POST /completion, POST /v1/embeddings,
POST /v1/audio/transcriptions[?hash=0], POST /v1/audio/speech, ANY /echo[/...],
GET /slow?chunks=N&delay_ms=D[&size=BYTES].
GET /blob?size=N[&seed=S][&chunk=C&delay_ms=D][&cut_at=K][&type=T]: N bytes of
application/octet-stream (or T) with Content-Length: the 4099-byte block blob_block(S)
repeated (see tests: a lost or doubled buffer shows), written C bytes at a time (default
262144) with D ms between writes; cut_at=K closes the connection after K bytes.
POST /stop-listening?exit_after_ms=N: stop accepting connections now (they are refused)
and exit(6) N ms later, like a server on its way down that is not reaped yet.
Any POST honours ?delay_ms=N (sleep before answering).
A streamed completion with ?stamp=1 adds "t_ns":"<CLOCK_MONOTONIC ns>" to every token
chunk, read just before the chunk is written (bench/sse_latency.py: arrival - send).
/v1/embeddings answers [0.1, 0.2, 0.3] per input (one per element of an array of
strings or of token arrays), as base64 float32 with "encoding_format":"base64".
/v1/audio/speech answers the bytes "FAKE-AUDIO <format> voice=<voice>\n<input>"
with the content type of "response_format" (mp3 by default: audio/mpeg).
)";

// ---------------------------------------------------------------------------
// Options and global state

struct Options {
    long long port = -1;
    std::string host = "127.0.0.1";
    std::string model = "fake-model";
    long long load_delay_ms = 0;
    long long tokens = 10;
    double tps = 0;
    std::string respond = "hi";
    bool crash_at_start = false;
    long long crash_after_tokens = -1; // -1 = never
    bool hang = false;
    bool ignore_sigterm = false;
    bool fork_grandchild = false;
    std::string pid_file;
    bool notify_ready = false;
    std::string health_path = "/health";
    long long log_lines = 2;
    long long exit_after_ms = -1; // -1 = never
    long long http_threads = 0;   // 0 = one thread per connection
    long long keepalive_ms = 5000;
    long long keepalive_max = 100;
    bool no_reuseaddr = false;
    bool no_nodelay = false;
    bool llama_log = false;
    long long report_threads = 4;
    long long parallel = 0; // slots; 0 = no limit
    std::string bind_fail_once;
    bool bind_fail_always = false;
    bool prompt_cache = false;
    bool no_cache_n = false;
    bool sigterm_abort = false;
    long long stall_after_tokens = -1; // -1 = never
    bool no_slots = false;
};

Options g_opt;
std::atomic<bool> g_loaded{false};
const auto g_start = std::chrono::steady_clock::now();

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "fake-upstream: %s\n(see --help)\n", msg.c_str());
    std::exit(2);
}

// Where a command-line option stores its value; the type decides the parsing.
using OptionTarget = std::variant<bool*, long long*, double*, std::string*>;

struct OptionSpec {
    const char* name;
    OptionTarget target;
};

const OptionSpec kOptionSpecs[] = {
    {"port", &g_opt.port},
    {"host", &g_opt.host},
    {"model", &g_opt.model},
    {"load-delay-ms", &g_opt.load_delay_ms},
    {"tokens", &g_opt.tokens},
    {"tps", &g_opt.tps},
    {"respond", &g_opt.respond},
    {"crash-at-start", &g_opt.crash_at_start},
    {"crash-after-tokens", &g_opt.crash_after_tokens},
    {"hang", &g_opt.hang},
    {"ignore-sigterm", &g_opt.ignore_sigterm},
    {"fork-grandchild", &g_opt.fork_grandchild},
    {"pid-file", &g_opt.pid_file},
    {"notify-ready", &g_opt.notify_ready},
    {"health-path", &g_opt.health_path},
    {"log-lines", &g_opt.log_lines},
    {"exit-after-ms", &g_opt.exit_after_ms},
    {"http-threads", &g_opt.http_threads},
    {"keepalive-ms", &g_opt.keepalive_ms},
    {"keepalive-max", &g_opt.keepalive_max},
    {"no-reuseaddr", &g_opt.no_reuseaddr},
    {"no-nodelay", &g_opt.no_nodelay},
    {"llama-log", &g_opt.llama_log},
    {"report-threads", &g_opt.report_threads},
    {"parallel", &g_opt.parallel},
    {"bind-fail-once", &g_opt.bind_fail_once},
    {"bind-fail-always", &g_opt.bind_fail_always},
    {"stall-after-tokens", &g_opt.stall_after_tokens},
    {"no-slots", &g_opt.no_slots},
    {"prompt-cache", &g_opt.prompt_cache},
    {"no-cache-n", &g_opt.no_cache_n},
    {"sigterm-abort", &g_opt.sigterm_abort},
};

void parse_number(const std::string& name, const std::string& text, long long* out) {
    char* end = nullptr;
    errno = 0;
    *out = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || *out < 0 || *out > (1LL << 40))
        usage_error("--" + name + ": invalid number '" + text + "'");
}

void parse_number(const std::string& name, const std::string& text, double* out) {
    char* end = nullptr;
    *out = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(*out >= 0) || *out > 1e9)
        usage_error("--" + name + ": invalid number '" + text + "'");
}

void parse_args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string name = argv[i];
        if (!name.starts_with("--")) usage_error("unexpected argument '" + name + "'");
        name.erase(0, 2);
        std::optional<std::string> value; // from --name=value
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        auto spec = std::find_if(std::begin(kOptionSpecs), std::end(kOptionSpecs),
                                 [&](const OptionSpec& o) { return name == o.name; });
        if (spec == std::end(kOptionSpecs)) usage_error("unknown option --" + name);
        if (auto* flag = std::get_if<bool*>(&spec->target)) {
            if (value) usage_error("--" + name + " takes no value");
            **flag = true;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) usage_error("--" + name + " needs a value");
            value = argv[++i];
        }
        if (auto* str = std::get_if<std::string*>(&spec->target))
            **str = *value;
        else if (auto* num = std::get_if<long long*>(&spec->target))
            parse_number(name, *value, *num);
        else
            parse_number(name, *value, std::get<double*>(spec->target));
    }
    if (g_opt.port < 0 || g_opt.port > 65535) usage_error("--port N (0-65535) is required");
    if (g_opt.http_threads > 4096) usage_error("--http-threads: at most 4096");
    if (g_opt.parallel > 4096) usage_error("--parallel: at most 4096");
    if (g_opt.keepalive_max < 1) usage_error("--keepalive-max: at least 1");
    if (g_opt.keepalive_ms > 24LL * 3600 * 1000) usage_error("--keepalive-ms: at most a day");
    if (g_opt.ignore_sigterm && g_opt.sigterm_abort)
        usage_error("--ignore-sigterm and --sigterm-abort exclude each other");
}

// ---------------------------------------------------------------------------
// Small utilities

void sleep_ms(double ms) {
    if (ms <= 0) return;
    timespec req{};
    req.tv_sec = static_cast<time_t>(ms / 1000);
    req.tv_nsec = static_cast<long>((ms - static_cast<double>(req.tv_sec) * 1000) * 1e6);
    // nanosleep writes the remaining time back, so an EINTR just resumes.
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {}
}

double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// Async-signal-safe message to stderr (used from signal handlers and right
// before _exit, where stdio must not be touched).
void raw_stderr(const char* msg) {
    size_t len = std::strlen(msg);
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, msg, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        msg += n;
        len -= static_cast<size_t>(n);
    }
}

void append_pid_line(pid_t pid) {
    if (g_opt.pid_file.empty()) return;
    FILE* f = std::fopen(g_opt.pid_file.c_str(), "a");
    if (!f) {
        std::fprintf(stderr, "fake-upstream: cannot open %s: %s\n", g_opt.pid_file.c_str(),
                     std::strerror(errno));
        std::exit(1);
    }
    std::fprintf(f, "%d\n", static_cast<int>(pid));
    std::fclose(f);
}

// Appends the whitespace-separated words of `s` (our stand-in for tokens).
void split_words(std::string_view s, std::vector<std::string>& out) {
    auto is_space = [](char ch) {
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
    };
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) ++i;
        size_t start = i;
        while (i < s.size() && !is_space(s[i])) ++i;
        if (i > start) out.emplace_back(s.substr(start, i - start));
    }
}

// Accepts well-formed UTF-8 without NUL bytes (cJSON strings are C strings).
bool is_utf8_text(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        unsigned c = *p++;
        if (c == 0) return false;
        if (c < 0x80) continue;
        int extra = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : -1;
        if (extra < 0 || c > 0xF4 || end - p < extra) return false;
        for (int i = 0; i < extra; ++i)
            if ((p[i] & 0xC0) != 0x80) return false;
        if ((c == 0xE0 && p[0] < 0xA0) || (c == 0xED && p[0] > 0x9F) ||
            (c == 0xF0 && p[0] < 0x90) || (c == 0xF4 && p[0] > 0x8F))
            return false; // overlong, surrogate or beyond U+10FFFF
        p += extra;
    }
    return true;
}

std::string to_lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), streamed so huge bodies never sit in memory.

class Sha256 {
public:
    void update(const void* data, size_t len) {
        const auto* p = static_cast<const uint8_t*>(data);
        total_ += len;
        while (len > 0) {
            size_t take = std::min(len, sizeof(buf_) - buf_len_);
            std::memcpy(buf_ + buf_len_, p, take);
            buf_len_ += take;
            p += take;
            len -= take;
            if (buf_len_ == sizeof(buf_)) {
                compress(buf_);
                buf_len_ = 0;
            }
        }
    }

    std::string hex_digest() {
        uint64_t bits = total_ * 8;
        uint8_t pad[72] = {0x80};
        size_t pad_len = (buf_len_ < 56 ? 56 : 120) - buf_len_;
        for (int i = 0; i < 8; ++i) pad[pad_len + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
        update(pad, pad_len + 8);
        char out[65];
        for (int i = 0; i < 8; ++i) std::snprintf(out + 8 * i, 9, "%08x", h_[i]);
        return std::string(out, 64);
    }

private:
    void compress(const uint8_t* block) {
        static constexpr uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2};
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t{block[4 * i]} << 24 | uint32_t{block[4 * i + 1]} << 16 |
                   uint32_t{block[4 * i + 2]} << 8 | uint32_t{block[4 * i + 3]};
        for (int i = 16; i < 64; ++i) {
            uint32_t s0 = std::rotr(w[i - 15], 7) ^ std::rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = std::rotr(w[i - 2], 17) ^ std::rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
                 h = h_[7];
        for (int i = 0; i < 64; ++i) {
            uint32_t t1 = h + (std::rotr(e, 6) ^ std::rotr(e, 11) ^ std::rotr(e, 25)) +
                          ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint32_t t2 = (std::rotr(a, 2) ^ std::rotr(a, 13) ^ std::rotr(a, 22)) +
                          ((a & b) ^ (a & c) ^ (b & c));
            h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        uint32_t vars[8] = {a, b, c, d, e, f, g, h};
        for (int i = 0; i < 8; ++i) h_[i] += vars[i];
    }

    uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t buf_[64] = {};
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

// ---------------------------------------------------------------------------
// JSON helpers (cJSON does the escaping)

using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

Json new_object() {
    return Json(cJSON_CreateObject(), cJSON_Delete);
}

std::string print_json(const cJSON* obj) {
    char* text = cJSON_PrintUnformatted(obj);
    std::string out = text ? text : "null";
    cJSON_free(text);
    return out;
}

Json error_json(int code, const std::string& message, const char* type) {
    Json root = new_object();
    cJSON* err = cJSON_AddObjectToObject(root.get(), "error");
    cJSON_AddStringToObject(err, "message", message.c_str());
    cJSON_AddStringToObject(err, "type", type);
    cJSON_AddNumberToObject(err, "code", code);
    return root;
}

std::optional<std::string> string_field(const cJSON* obj, const char* name) {
    const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(item)) return std::nullopt;
    return item->valuestring;
}

// "request_model" echoes the request's "model" so tests can see what the
// proxy forwarded (e.g. useModelName rewriting); null when absent.
void add_request_model(cJSON* root, const std::optional<std::string>& model) {
    if (model)
        cJSON_AddStringToObject(root, "request_model", model->c_str());
    else
        cJSON_AddNullToObject(root, "request_model");
}

// Collects prompt "tokens": whitespace-separated words in strings, arrays of
// strings/numbers, and content-part objects ({"type":"text","text":...}).
void collect_prompt_words(const cJSON* item, std::vector<std::string>& out) {
    if (!item) return;
    if (cJSON_IsString(item)) {
        split_words(item->valuestring, out);
    } else if (cJSON_IsNumber(item)) {
        out.push_back(print_json(item)); // pre-tokenized prompt: one token
    } else if (cJSON_IsArray(item)) {
        for (const cJSON* el = item->child; el; el = el->next) collect_prompt_words(el, out);
    } else if (cJSON_IsObject(item)) {
        collect_prompt_words(cJSON_GetObjectItemCaseSensitive(item, "text"), out);
    }
}

int count_prompt_words(const cJSON* item) {
    std::vector<std::string> words;
    collect_prompt_words(item, words);
    return static_cast<int>(words.size());
}

// --prompt-cache: llama-server keeps the last prompt's KV cache, so a prompt
// that extends (or repeats) it only evaluates the new tokens. One cache shared
// by every connection, like a single slot.
class PromptCache {
public:
    // Returns how many of `words` are served from the cache, then remembers
    // them as the new cached prompt. At least one token is always evaluated
    // (llama-server re-evaluates the last one to get logits).
    int reuse(std::vector<std::string> words) {
        std::lock_guard lock(mu_);
        size_t cached = 0;
        if (words.size() >= last_.size() && std::equal(last_.begin(), last_.end(), words.begin()))
            cached = last_.size();
        last_ = std::move(words);
        int total = std::max(static_cast<int>(last_.size()), 1);
        return std::min(static_cast<int>(cached), total - 1);
    }

private:
    std::mutex mu_;
    std::vector<std::string> last_;
};

PromptCache g_prompt_cache;

// ---------------------------------------------------------------------------
// Connection: a socket plus a read buffer of bytes received but not consumed.

class Connection {
public:
    explicit Connection(int fd) : fd_(fd) {}
    ~Connection() { close(fd_); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    enum class HeadResult { Ok, Closed, TooLarge };

    // Reads up to and including the blank line that ends the request head.
    HeadResult read_head(std::string& head) {
        for (;;) {
            // RFC 9112 2.2: ignore empty lines that precede a request line.
            while (in_.starts_with("\r\n")) in_.erase(0, 2);
            if (auto end = in_.find("\r\n\r\n"); end != std::string::npos) {
                if (end > kMaxHeadBytes) return HeadResult::TooLarge;
                head = in_.substr(0, end);
                in_.erase(0, end + 4);
                return HeadResult::Ok;
            }
            if (in_.size() > kMaxHeadBytes) return HeadResult::TooLarge;
            if (!fill()) return HeadResult::Closed;
        }
    }

    // Reads one CRLF-terminated line (without the CRLF), at most max bytes.
    bool read_line(std::string& line, size_t max) {
        for (;;) {
            if (auto end = in_.find("\r\n"); end != std::string::npos) {
                if (end > max) return false;
                line = in_.substr(0, end);
                in_.erase(0, end + 2);
                return true;
            }
            if (in_.size() > max + 1 || !fill()) return false;
        }
    }

    // Returns >0 bytes read, 0 on EOF, -1 on error. Buffered bytes go first;
    // otherwise reads straight into `out` so large bodies avoid a copy.
    ssize_t read_some(char* out, size_t max) {
        if (in_.empty()) return recv_raw(out, max);
        size_t n = std::min(max, in_.size());
        std::memcpy(out, in_.data(), n);
        in_.erase(0, n);
        return static_cast<ssize_t>(n);
    }

    bool send_all(std::string_view data) {
        while (!data.empty()) {
            // MSG_NOSIGNAL: a vanished client is an error here, not a SIGPIPE.
            ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }

    // Waits up to `ms` for the next request to begin; false if none came.
    // EOF and errors count as readable, so a client close ends the wait at once.
    bool wait_readable(long long ms) {
        if (!in_.empty()) return true; // a pipelined request is already here
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            int n = poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
            if (n > 0) return true;
            if (n == 0) return false;
            if (errno != EINTR) return true; // let the next read report the error
        }
    }

    // Never reads again: returns once the peer has closed (or after `ms`), so what the peer
    // sends piles up in the socket buffers, as with a wedged server.
    void stop_reading_until_hangup(long long ms) {
        pollfd p{fd_, POLLRDHUP, 0};
        while (poll(&p, 1, static_cast<int>(ms)) < 0 && errno == EINTR) {}
    }

    // For --hang: swallow everything until the peer goes away.
    void discard_until_eof() {
        char buf[4096];
        while (read_some(buf, sizeof(buf)) > 0) {}
    }

private:
    ssize_t recv_raw(char* out, size_t max) {
        for (;;) {
            ssize_t n = recv(fd_, out, max, 0);
            if (n >= 0 || errno != EINTR) return n;
        }
    }

    // Appends more socket bytes to the buffer; false on EOF or error.
    bool fill() {
        char buf[16384];
        ssize_t n = recv_raw(buf, sizeof(buf));
        if (n <= 0) return false;
        in_.append(buf, static_cast<size_t>(n));
        return true;
    }

    int fd_;
    std::string in_;
};

// ---------------------------------------------------------------------------
// Request head parsing

struct Request {
    std::string method, target, path, query;
    bool http11 = true;
    std::vector<std::pair<std::string, std::string>> headers; // names lowercased
    bool keep_alive = true;
    bool chunked = false;
    uint64_t content_length = 0;
    bool expect_continue = false;

    // Last occurrence wins, matching the /echo contract.
    const std::string* header(std::string_view name) const {
        const std::string* found = nullptr;
        for (const auto& [k, v] : headers)
            if (k == name) found = &v;
        return found;
    }
};

bool parse_request_line(std::string_view line, Request& req) {
    auto sp1 = line.find(' ');
    auto sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == 0 || sp2 == sp1) return false;
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
    if (req.target.empty() || req.target.front() != '/') return false;
    req.http11 = version == "HTTP/1.1";
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
    return true;
}

bool parse_framing_headers(Request& req) {
    bool have_length = false;
    for (const auto& [name, value] : req.headers) {
        if (name == "content-length") {
            if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos ||
                value.size() > 18)
                return false;
            uint64_t len = std::strtoull(value.c_str(), nullptr, 10);
            if (have_length && len != req.content_length) return false;
            req.content_length = len;
            have_length = true;
        } else if (name == "transfer-encoding") {
            std::string te = to_lower(value);
            if (std::string_view(trim(te)) != "chunked") return false; // only chunked supported
            req.chunked = true;
        }
    }
    if (req.chunked) req.content_length = 0; // RFC 9112 6.3: chunked overrides length
    std::string conn = req.header("connection") ? to_lower(*req.header("connection")) : "";
    req.keep_alive = req.http11 ? conn.find("close") == std::string::npos
                                : conn.find("keep-alive") != std::string::npos;
    const std::string* expect = req.header("expect");
    req.expect_continue = req.http11 && expect && to_lower(*expect) == "100-continue";
    return true;
}

bool parse_request(std::string_view head, Request& req) {
    size_t eol = head.find("\r\n");
    if (!parse_request_line(head.substr(0, eol), req)) return false;
    while (eol != std::string_view::npos) {
        head.remove_prefix(eol + 2);
        eol = head.find("\r\n");
        std::string_view line = head.substr(0, eol);
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        std::string_view name = line.substr(0, colon);
        if (name.find_first_of(" \t") != std::string_view::npos) return false; // also obs-fold
        req.headers.emplace_back(to_lower(std::string(name)),
                                 std::string(trim(line.substr(colon + 1))));
    }
    return parse_framing_headers(req);
}

std::optional<long long> query_int(const std::string& query, std::string_view key) {
    std::string_view rest = query;
    while (!rest.empty()) {
        auto amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? "" : rest.substr(amp + 1);
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || pair.substr(0, eq) != key) continue;
        std::string value(pair.substr(eq + 1));
        char* end = nullptr;
        long long v = std::strtoll(value.c_str(), &end, 10);
        if (!value.empty() && *end == '\0' && v >= 0) return v;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Request body reading: Content-Length or chunked, streamed.

class BodyReader {
public:
    BodyReader(Connection& c, const Request& req)
        : conn_(c), chunked_(req.chunked), remaining_(req.content_length),
          done_(!req.chunked && req.content_length == 0) {}

    bool has_body() const { return !done_; }

    // Returns >0 bytes, 0 at end of body, -1 if malformed or the peer left.
    ssize_t read(char* out, size_t max) {
        if (done_) return 0;
        if (remaining_ == 0) { // only reachable when chunked
            if (!next_chunk()) return -1;
            if (done_) return 0;
        }
        ssize_t n = conn_.read_some(out, static_cast<size_t>(std::min<uint64_t>(max, remaining_)));
        if (n <= 0) return -1; // EOF inside a body is an error
        remaining_ -= static_cast<uint64_t>(n);
        if (!chunked_ && remaining_ == 0) done_ = true;
        return n;
    }

    bool drain() {
        char buf[kIoChunk];
        for (;;) {
            ssize_t n = read(buf, sizeof(buf));
            if (n <= 0) return n == 0;
        }
    }

    enum class ReadAll { Ok, TooLarge, Error };

    ReadAll read_all(std::string& out, size_t limit) {
        char buf[kIoChunk];
        for (;;) {
            ssize_t n = read(buf, sizeof(buf));
            if (n < 0) return ReadAll::Error;
            if (n == 0) return ReadAll::Ok;
            if (out.size() + static_cast<size_t>(n) > limit) return ReadAll::TooLarge;
            out.append(buf, static_cast<size_t>(n));
        }
    }

    // Streams the body through a hash (none: only counted); keeps a copy while it is small.
    // pause_ms: sleep that long before each read (a slow reader, as a busy server is).
    bool hash(Sha256* sha, uint64_t& total, std::string& small_copy, long long pause_ms = 0) {
        char buf[kIoChunk];
        for (;;) {
            if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
            ssize_t n = read(buf, sizeof(buf));
            if (n <= 0) return n == 0;
            if (sha) sha->update(buf, static_cast<size_t>(n));
            total += static_cast<uint64_t>(n);
            if (total <= kMaxEchoedBody) small_copy.append(buf, static_cast<size_t>(n));
        }
    }

private:
    // Reads "<hex-size>[;ext]\r\n" (after the previous chunk's CRLF), or the
    // last chunk plus trailers.
    bool next_chunk() {
        std::string line;
        if (in_chunk_ && (!conn_.read_line(line, 0) || !line.empty())) return false;
        if (!conn_.read_line(line, 4096)) return false;
        std::string_view size_text = trim(std::string_view(line).substr(0, line.find(';')));
        if (size_text.empty() || size_text.size() > 15) return false;
        uint64_t size = 0;
        for (char ch : size_text) {
            int digit = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                 : -1;
            if (digit < 0) return false;
            size = size * 16 + static_cast<uint64_t>(digit);
        }
        if (size == 0) {
            do { // trailer section ends with an empty line
                if (!conn_.read_line(line, 8192)) return false;
            } while (!line.empty());
            done_ = true;
            return true;
        }
        remaining_ = size;
        in_chunk_ = true;
        return true;
    }

    Connection& conn_;
    bool chunked_;
    uint64_t remaining_;
    bool done_;
    bool in_chunk_ = false;
};

// ---------------------------------------------------------------------------
// Responses. Each returns whether the connection may serve another request.

const char* reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 413:
        return "Content Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

std::string status_head(int status, const Request& req, const char* content_type) {
    // A Date, as an origin server with a clock sends (uvicorn for vLLM, Go, nginx).
    char date[64];
    const time_t now = time(nullptr);
    struct tm tm_utc;
    gmtime_r(&now, &tm_utc);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
    char line[384];
    std::snprintf(line, sizeof(line),
                  "HTTP/1.1 %d %s\r\nServer: fake-upstream\r\nDate: %s\r\nContent-Type: "
                  "%s\r\nConnection: %s\r\n",
                  status, reason_phrase(status), date, content_type,
                  req.keep_alive ? "keep-alive" : "close");
    return line;
}

bool reply(Connection& c, const Request& req, int status, const char* content_type,
           std::string_view body) {
    std::string msg = status_head(status, req, content_type);
    msg += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    if (g_opt.no_nodelay && !body.empty()) {
        // cpp-httplib (llama-server) writes the head and the body with separate calls.
        return c.send_all(msg) && c.send_all(body) && req.keep_alive;
    }
    msg += body;
    return c.send_all(msg) && req.keep_alive;
}

bool reply_json(Connection& c, const Request& req, int status, const Json& obj) {
    return reply(c, req, status, "application/json", print_json(obj.get()));
}

bool reply_error(Connection& c, const Request& req, int status, const std::string& message,
                 const char* type) {
    return reply_json(c, req, status, error_json(status, message, type));
}

// A streamed response: chunked for HTTP/1.1, raw-until-close for HTTP/1.0.
class StreamedReply {
public:
    StreamedReply(Connection& c, Request& req) : conn_(c), req_(req), framed_(req.http11) {
        if (!framed_) req.keep_alive = false;
    }

    bool begin(const char* content_type) {
        std::string head = status_head(200, req_, content_type);
        head += "Cache-Control: no-cache\r\n";
        if (framed_) head += "Transfer-Encoding: chunked\r\n";
        return conn_.send_all(head + "\r\n");
    }

    // One write() per call, so every SSE event leaves as its own HTTP chunk.
    bool write(std::string_view data) {
        if (data.empty()) return true;
        if (!framed_) return conn_.send_all(data);
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
        std::string chunk = size;
        chunk.append(data).append("\r\n");
        return conn_.send_all(chunk);
    }

    bool finish() { return (!framed_ || conn_.send_all("0\r\n\r\n")) && req_.keep_alive; }

private:
    Connection& conn_;
    Request& req_;
    bool framed_;
};

// ---------------------------------------------------------------------------
// Slots (--parallel): llama-server processes at most n_parallel tasks at once;
// a request's HTTP thread blocks until its task got a slot and finished.

class Slots {
public:
    // Holds one slot for its lifetime (no-op without --parallel).
    class Lease {
    public:
        explicit Lease(Slots& s) : slots_(s) { slots_.acquire(); }
        ~Lease() { slots_.release(); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;

    private:
        Slots& slots_;
    };

private:
    void acquire() {
        if (g_opt.parallel == 0) return;
        std::unique_lock lock(mu_);
        free_.wait(lock, [this] { return busy_ < g_opt.parallel; });
        ++busy_;
    }

    void release() {
        if (g_opt.parallel == 0) return;
        {
            std::lock_guard lock(mu_);
            --busy_;
        }
        free_.notify_one();
    }

    std::mutex mu_;
    std::condition_variable free_;
    long long busy_ = 0;
};

Slots g_slots;

// llama-server's main loop, as far as tests can tell: tasks being processed (what GET /slots
// reports) and, once wedged (--stall-after-tokens), nothing that needs the loop ever returns.
class MainLoop {
public:
    class Task {
    public:
        explicit Task(MainLoop& l) : loop_(l) {
            loop_.wait_unless_running();
            ++loop_.processing_;
        }
        ~Task() { --loop_.processing_; }
        Task(const Task&) = delete;
        Task& operator=(const Task&) = delete;

    private:
        MainLoop& loop_;
    };

    // The caller's request never ends (its thread sleeps until the process is stopped).
    [[noreturn]] void wedge() {
        if (!wedged_.exchange(true)) raw_stderr("fake-upstream: main loop wedged (simulated)\n");
        for (;;) pause();
    }
    void wait_unless_running() {
        if (wedged_.load()) wedge();
    }
    long long processing() const { return processing_.load(); }

private:
    std::atomic<bool> wedged_{false};
    std::atomic<long long> processing_{0};
};

MainLoop g_main_loop;

// ---------------------------------------------------------------------------
// Completions

enum class Api { Chat, Text };

struct Generation {
    Api api = Api::Chat;
    bool stream = false;
    int prompt_tokens = 1;                    // the whole prompt (what the client is charged)
    int cached_tokens = 0;                    // of which served from the prompt cache
    std::optional<std::string> request_model; // "model" from the request body
    long long stall_after = -1;               // tokens before the main loop wedges; -1: never
    bool stamp = false;                       // ?stamp=1: "t_ns" send time in each token chunk
};

// The prompt's words: every message's content for chat, else "prompt".
std::vector<std::string> prompt_words(const cJSON* body, Api api) {
    std::vector<std::string> words;
    if (api == Api::Chat) {
        const cJSON* messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
        const cJSON* msg = nullptr;
        cJSON_ArrayForEach(msg, messages) {
            collect_prompt_words(cJSON_GetObjectItemCaseSensitive(msg, "content"), words);
        }
    } else {
        collect_prompt_words(cJSON_GetObjectItemCaseSensitive(body, "prompt"), words);
    }
    return words;
}

Generation describe_request(const cJSON* body, Api api) {
    Generation gen;
    gen.api = api;
    gen.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
    gen.request_model = string_field(body, "model");
    std::vector<std::string> words = prompt_words(body, api);
    gen.prompt_tokens = std::max(static_cast<int>(words.size()), 1);
    if (g_opt.prompt_cache) gen.cached_tokens = g_prompt_cache.reuse(std::move(words));
    return gen;
}

// Top-level fields common to every completion reply or chunk.
Json completion_base(const Generation& gen, bool chunk) {
    Json root = new_object();
    bool chat = gen.api == Api::Chat;
    cJSON_AddStringToObject(root.get(), "id", chat ? "chatcmpl-fake" : "cmpl-fake");
    cJSON_AddStringToObject(root.get(), "object",
                            chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                 : "text_completion");
    cJSON_AddNumberToObject(root.get(), "created", static_cast<double>(time(nullptr)));
    cJSON_AddStringToObject(root.get(), "model", g_opt.model.c_str());
    add_request_model(root.get(), gen.request_model);
    return root;
}

// Adds choices[0] carrying `text` (as delta, message or text per API shape).
void add_choice(cJSON* root, const Generation& gen, bool chunk, const char* text,
                const char* finish_reason) {
    cJSON* choice = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    if (gen.api == Api::Text) {
        cJSON_AddStringToObject(choice, "text", text ? text : "");
    } else if (chunk) {
        cJSON* delta = cJSON_AddObjectToObject(choice, "delta");
        if (text) cJSON_AddStringToObject(delta, "content", text);
    } else {
        cJSON* message = cJSON_AddObjectToObject(choice, "message");
        cJSON_AddStringToObject(message, "role", "assistant");
        cJSON_AddStringToObject(message, "content", text ? text : "");
    }
    if (finish_reason)
        cJSON_AddStringToObject(choice, "finish_reason", finish_reason);
    else
        cJSON_AddNullToObject(choice, "finish_reason");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
}

void add_usage_and_timings(cJSON* root, const Generation& gen, long long predicted_n,
                           double predicted_ms) {
    // usage charges the whole prompt; timings count only the tokens evaluated now.
    cJSON* usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", gen.prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", static_cast<double>(predicted_n));
    cJSON_AddNumberToObject(usage, "total_tokens",
                            static_cast<double>(gen.prompt_tokens + predicted_n));
    if (g_opt.prompt_cache && !g_opt.no_cache_n) {
        cJSON* details = cJSON_AddObjectToObject(usage, "prompt_tokens_details");
        cJSON_AddNumberToObject(details, "cached_tokens", gen.cached_tokens);
    }
    int prompt_n = gen.prompt_tokens - gen.cached_tokens;
    // Prompt processing is not simulated; report a plausible 0.1 ms per token.
    double prompt_ms = 0.1 * prompt_n;
    predicted_ms = std::max(predicted_ms, 0.001); // avoid dividing by zero
    cJSON* t = cJSON_AddObjectToObject(root, "timings");
    cJSON_AddNumberToObject(t, "prompt_n", prompt_n);
    cJSON_AddNumberToObject(t, "prompt_ms", prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_per_second", prompt_n / prompt_ms * 1000);
    cJSON_AddNumberToObject(t, "predicted_n", static_cast<double>(predicted_n));
    cJSON_AddNumberToObject(t, "predicted_ms", predicted_ms);
    cJSON_AddNumberToObject(t, "predicted_per_second",
                            static_cast<double>(predicted_n) / predicted_ms * 1000);
    if (!g_opt.no_cache_n) cJSON_AddNumberToObject(t, "cache_n", gen.cached_tokens);
}

// Sleeps one token's worth of time at the configured --tps.
void pace_token() {
    if (g_opt.tps > 0) sleep_ms(1000.0 / g_opt.tps);
}

// --crash-after-tokens: die abruptly, mid-response, like a segfaulting server.
// --stall-after-tokens / ?stall_after_tokens: wedge there instead.
void maybe_crash(long long tokens_done, long long stall_after) {
    if (stall_after == tokens_done) g_main_loop.wedge();
    if (g_opt.crash_after_tokens != tokens_done) return;
    raw_stderr("fake-upstream: simulated crash during generation\n");
    _exit(4);
}

std::string sse_event(const Json& obj) {
    return "data: " + print_json(obj.get()) + "\n\n";
}

bool stream_completion(Connection& c, Request& req, const Generation& gen) {
    StreamedReply out(c, req);
    if (gen.stall_after == 0) g_main_loop.wedge(); // before the head, like a long prompt
    if (!out.begin("text/event-stream")) return false;
    auto t0 = std::chrono::steady_clock::now();
    maybe_crash(0, -1);
    for (long long i = 0; i < g_opt.tokens; ++i) {
        pace_token();
        Json chunk = completion_base(gen, true);
        add_choice(chunk.get(), gen, true, g_opt.respond.c_str(), nullptr);
        if (gen.stamp) {
            // Last thing before the write: the JSON is printed after, so the stamp is a
            // few microseconds early (the same for every route it is compared across).
            timespec ts{};
            clock_gettime(CLOCK_MONOTONIC, &ts);
            std::string ns =
                std::to_string(static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec);
            cJSON_AddStringToObject(chunk.get(), "t_ns", ns.c_str());
        }
        if (!out.write(sse_event(chunk))) return false;
        maybe_crash(i + 1, gen.stall_after);
    }
    Json last = completion_base(gen, true);
    add_choice(last.get(), gen, true, nullptr, "stop");
    add_usage_and_timings(last.get(), gen, g_opt.tokens, ms_since(t0));
    return out.write(sse_event(last)) && out.write("data: [DONE]\n\n") && out.finish();
}

bool complete(Connection& c, const Request& req, const Generation& gen) {
    auto t0 = std::chrono::steady_clock::now();
    std::string text;
    maybe_crash(0, gen.stall_after);
    for (long long i = 0; i < g_opt.tokens; ++i) {
        pace_token();
        if (i > 0) text += ' ';
        text += g_opt.respond;
        maybe_crash(i + 1, gen.stall_after);
    }
    Json root = completion_base(gen, false);
    add_choice(root.get(), gen, false, text.c_str(), "stop");
    add_usage_and_timings(root.get(), gen, g_opt.tokens, ms_since(t0));
    return reply_json(c, req, 200, root);
}

// ---------------------------------------------------------------------------
// Endpoint handlers

// ?delay_ms=N on a POST: hold the answer back (lets tests keep requests in flight).
void post_delay(const Request& req) {
    if (req.method != "POST") return;
    if (auto ms = query_int(req.query, "delay_ms")) sleep_ms(static_cast<double>(*ms));
}

// The body was malformed (bad chunk framing) or cut short: we lost our place
// in the byte stream, so answer 400 if the peer still listens, then close.
bool bad_body(Connection& c, Request& req) {
    req.keep_alive = false;
    reply_error(c, req, 400, "Malformed request body", "invalid_request_error");
    return false;
}

// Reads a JSON object body; on failure sends the error reply itself.
// Returns nullopt with `keep` set to whether the connection survives.
std::optional<Json> read_json_body(Connection& c, Request& req, BodyReader& body, bool& keep) {
    std::string text;
    switch (body.read_all(text, kMaxJsonBody)) {
    case BodyReader::ReadAll::Error:
        keep = bad_body(c, req);
        return std::nullopt;
    case BodyReader::ReadAll::TooLarge:
        req.keep_alive = false; // the rest of the body is never read
        keep = reply_error(c, req, 413, "Request body too large", "invalid_request_error");
        return std::nullopt;
    case BodyReader::ReadAll::Ok:
        break;
    }
    Json doc(cJSON_ParseWithLength(text.data(), text.size()), cJSON_Delete);
    if (!doc || !cJSON_IsObject(doc.get())) {
        keep = reply_error(c, req, 400, "Invalid JSON body", "invalid_request_error");
        return std::nullopt;
    }
    return doc;
}

bool handle_completion(Connection& c, Request& req, BodyReader& body, Api api) {
    bool keep = false;
    auto doc = read_json_body(c, req, body, keep);
    if (!doc) return keep;
    Slots::Lease slot(g_slots);
    MainLoop::Task task(g_main_loop);
    Generation gen = describe_request(doc->get(), api);
    gen.stall_after = query_int(req.query, "stall_after_tokens").value_or(g_opt.stall_after_tokens);
    gen.stamp = query_int(req.query, "stamp").value_or(0) != 0;
    post_delay(req);
    return gen.stream ? stream_completion(c, req, gen) : complete(c, req, gen);
}

std::string base64(std::string_view bytes) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < bytes.size(); i += 3) {
        uint32_t n = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
        if (i + 1 < bytes.size()) n |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
        if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
    }
    return out;
}

// How many embeddings an "input" asks for: one per element of an array of strings or of
// token arrays; one for a string or a single token array.
int embedding_inputs(const cJSON* input) {
    if (!cJSON_IsArray(input) || !input->child) return 1;
    if (cJSON_IsNumber(input->child)) return 1; // one pre-tokenized input
    return cJSON_GetArraySize(input);
}

bool handle_embeddings(Connection& c, Request& req, BodyReader& body) {
    bool keep = false;
    auto doc = read_json_body(c, req, body, keep);
    if (!doc) return keep;
    const cJSON* input = cJSON_GetObjectItemCaseSensitive(doc->get(), "input");
    int prompt = std::max(count_prompt_words(input), 1);
    std::optional<std::string> request_model = string_field(doc->get(), "model");
    // Like llama-server (and OpenAI): the OpenAI SDKs ask for base64 by default.
    bool as_base64 = string_field(doc->get(), "encoding_format").value_or("float") == "base64";
    Slots::Lease slot(g_slots);
    MainLoop::Task task(g_main_loop);
    post_delay(req);

    Json root = new_object();
    cJSON_AddStringToObject(root.get(), "object", "list");
    cJSON* data = cJSON_AddArrayToObject(root.get(), "data");
    const float values[] = {0.1f, 0.2f, 0.3f};
    for (int i = 0, n = embedding_inputs(input); i < n; ++i) {
        cJSON* item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "object", "embedding");
        cJSON_AddNumberToObject(item, "index", i);
        if (as_base64) {
            std::string raw; // little-endian float32, as OpenAI sends them
            for (float v : values) {
                auto bits = std::bit_cast<uint32_t>(v);
                for (int b = 0; b < 4; ++b) raw += static_cast<char>((bits >> (8 * b)) & 0xff);
            }
            cJSON_AddStringToObject(item, "embedding", base64(raw).c_str());
        } else {
            const double doubles[] = {0.1, 0.2, 0.3};
            cJSON_AddItemToObject(item, "embedding", cJSON_CreateDoubleArray(doubles, 3));
        }
        cJSON_AddItemToArray(data, item);
    }
    cJSON_AddStringToObject(root.get(), "model", g_opt.model.c_str());
    cJSON* usage = cJSON_AddObjectToObject(root.get(), "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", prompt);
    cJSON_AddNumberToObject(usage, "total_tokens", prompt);
    add_request_model(root.get(), request_model);
    return reply_json(c, req, 200, root);
}

bool handle_echo(Connection& c, Request& req, BodyReader& body) {
    Sha256 sha;
    uint64_t total = 0;
    std::string small_copy;
    if (!body.hash(&sha, total, small_copy)) return bad_body(c, req);
    post_delay(req);

    Json root = new_object();
    cJSON_AddStringToObject(root.get(), "method", req.method.c_str());
    cJSON_AddStringToObject(root.get(), "path", req.target.c_str());
    std::map<std::string, std::string> last_wins;
    for (const auto& [name, value] : req.headers) last_wins[name] = value;
    cJSON* headers = cJSON_AddObjectToObject(root.get(), "headers");
    for (const auto& [name, value] : last_wins) {
        // Header bytes are arbitrary; only valid UTF-8 can go into JSON text.
        if (is_utf8_text(value)) cJSON_AddStringToObject(headers, name.c_str(), value.c_str());
    }
    cJSON_AddNumberToObject(root.get(), "body_length", static_cast<double>(total));
    cJSON_AddStringToObject(root.get(), "body_sha256", sha.hex_digest().c_str());
    if (total <= kMaxEchoedBody && is_utf8_text(small_copy))
        cJSON_AddStringToObject(root.get(), "body", small_copy.c_str());
    return reply_json(c, req, 200, root);
}

bool handle_transcription(Connection& c, Request& req, BodyReader& body) {
    Sha256 sha;
    uint64_t total = 0;
    std::string small_copy;
    // ?hash=0: only count (benchmarks: the hash would be the slowest part of an upload).
    const bool hashing = query_int(req.query, "hash").value_or(1) != 0;
    // ?announce=1: say on stderr (the daemon's log) that the head is here, before the body is
    // read, and how the body ended: a test sees the request arrive while its client is still
    // sending, and whether a whole body ever came.
    const bool announce = query_int(req.query, "announce").value_or(0) != 0;
    if (announce) {
        std::fprintf(stderr, "fake-upstream: transcription head received\n");
        std::fflush(stderr);
    }
    // ?read_pause_ms=N: a slow reader (N ms before each read of up to 64 KiB).
    const long long pause_ms = query_int(req.query, "read_pause_ms").value_or(0);
    const bool whole = body.hash(hashing ? &sha : nullptr, total, small_copy, pause_ms);
    if (announce) {
        std::fprintf(stderr, "fake-upstream: transcription body %s %llu bytes\n",
                     whole ? "received," : "cut after", static_cast<unsigned long long>(total));
        std::fflush(stderr);
    }
    if (!whole) return bad_body(c, req);
    post_delay(req);

    Json root = new_object();
    std::string text = "The length of the file is " + std::to_string(total) + " bytes";
    cJSON_AddStringToObject(root.get(), "text", text.c_str());
    cJSON_AddNumberToObject(root.get(), "body_length", static_cast<double>(total));
    cJSON_AddStringToObject(root.get(), "body_sha256", sha.hex_digest().c_str());
    const std::string* ctype = req.header("content-type");
    cJSON_AddStringToObject(root.get(), "content_type", ctype ? ctype->c_str() : "");
    cJSON_AddStringToObject(root.get(), "model", g_opt.model.c_str());
    return reply_json(c, req, 200, root);
}

// Text to speech: deterministic bytes derived from the request, so a test can predict them.
bool handle_speech(Connection& c, Request& req, BodyReader& body) {
    bool keep = false;
    auto doc = read_json_body(c, req, body, keep);
    if (!doc) return keep;
    std::optional<std::string> input = string_field(doc->get(), "input");
    if (!input) return reply_error(c, req, 400, "'input' is required", "invalid_request_error");
    std::string format = string_field(doc->get(), "response_format").value_or("mp3");
    std::string voice = string_field(doc->get(), "voice").value_or("");
    static const std::pair<const char*, const char*> kTypes[] = {
        {"mp3", "audio/mpeg"},  {"opus", "audio/ogg"}, {"aac", "audio/aac"},
        {"flac", "audio/flac"}, {"wav", "audio/wav"},  {"pcm", "audio/pcm"}};
    const char* type = nullptr;
    for (const auto& [name, mime] : kTypes)
        if (format == name) type = mime;
    if (!type)
        return reply_error(c, req, 400, "unsupported response_format '" + format + "'",
                           "invalid_request_error");
    post_delay(req);
    std::string audio = "FAKE-AUDIO " + format + " voice=" + voice + "\n" + *input;
    return reply(c, req, 200, type, audio);
}

bool handle_models(Connection& c, const Request& req) {
    Json root = new_object();
    cJSON_AddStringToObject(root.get(), "object", "list");
    cJSON* model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "id", g_opt.model.c_str());
    cJSON_AddStringToObject(model, "object", "model");
    cJSON_AddStringToObject(model, "owned_by", "fake");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root.get(), "data"), model);
    return reply_json(c, req, 200, root);
}

// /blob's content: a xorshift block of a prime length, so that no buffer or pipe size
// divides it (tests rebuild it to check bodies byte for byte).
std::string blob_block(uint32_t seed) {
    std::string block(4099, '\0');
    uint32_t x = seed ? seed : 2463534242u;
    for (char& c : block) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x & 0xff);
    }
    return block;
}

bool handle_blob(Connection& c, const Request& req) {
    const long long size = std::max(query_int(req.query, "size").value_or(0), 0LL);
    const long long chunk =
        std::clamp(query_int(req.query, "chunk").value_or(262144), 1LL, 64LL * 1024 * 1024);
    const long long delay = query_int(req.query, "delay_ms").value_or(0);
    const long long cut_at = query_int(req.query, "cut_at").value_or(-1);
    const std::string type = [&] {
        const std::string q = "type=";
        size_t at = req.query.find(q);
        if (at == std::string::npos) return std::string("application/octet-stream");
        std::string t = req.query.substr(at + q.size());
        return t.substr(0, t.find('&'));
    }();
    const std::string block =
        blob_block(static_cast<uint32_t>(query_int(req.query, "seed").value_or(1)));
    std::string head = status_head(200, req, type.c_str());
    head += "Content-Length: " + std::to_string(size) + "\r\n\r\n";
    if (!c.send_all(head)) return false;
    if (req.method == "HEAD") return req.keep_alive;
    // The block repeated over one write and one block more: each write is a slice of it.
    std::string pattern;
    const size_t span = static_cast<size_t>(std::min(chunk, size)) + block.size();
    while (pattern.size() < span) pattern += block;
    long long sent = 0;
    while (sent < size) {
        long long n = std::min(chunk, size - sent);
        if (cut_at >= 0) n = std::min(n, cut_at - sent);
        if (n <= 0) return false; // cut_at: the connection closes mid-body
        const size_t from = static_cast<size_t>(sent % static_cast<long long>(block.size()));
        if (!c.send_all(std::string_view(pattern).substr(from, static_cast<size_t>(n))))
            return false;
        sent += n;
        if (delay > 0 && sent < size) sleep_ms(static_cast<double>(delay));
    }
    return req.keep_alive;
}

int g_listen_fd = -1;

bool handle_stop_listening(Connection& c, const Request& req) {
    const long long after = query_int(req.query, "exit_after_ms").value_or(500);
    // Before the answer: once the client has it, a connect must be refused (answering first
    // let a fast proxy connect again before this thread got to the shutdown).
    ::shutdown(g_listen_fd, SHUT_RD); // Linux: the socket leaves LISTEN, connects are refused
    const bool ok = reply(c, req, 200, "text/plain", "stopped listening\n");
    std::thread([after] {
        sleep_ms(static_cast<double>(after));
        raw_stderr("fake-upstream: exiting after /stop-listening\n");
        _exit(6);
    }).detach();
    return ok;
}

// GET /slots: answered by llama-server's main loop (so never while it is wedged).
bool handle_slots(Connection& c, const Request& req) {
    if (g_opt.no_slots)
        return reply_error(c, req, 501, "This server does not support slots endpoint.",
                           "not_supported_error");
    g_main_loop.wait_unless_running();
    const long long n = std::max(g_opt.parallel, 1LL);
    const long long busy = g_main_loop.processing();
    Json root(cJSON_CreateArray(), cJSON_Delete);
    for (long long i = 0; i < n; ++i) {
        cJSON* slot = cJSON_CreateObject();
        cJSON_AddNumberToObject(slot, "id", static_cast<double>(i));
        cJSON_AddBoolToObject(slot, "is_processing", i < busy);
        cJSON_AddItemToArray(root.get(), slot);
    }
    return reply_json(c, req, 200, root);
}

bool handle_slow(Connection& c, Request& req) {
    long long chunks = query_int(req.query, "chunks").value_or(5);
    long long delay = query_int(req.query, "delay_ms").value_or(100);
    // ?size=N: each chunk padded with '.' to N bytes (a large body for slow-reader tests).
    const size_t size = static_cast<size_t>(std::clamp(query_int(req.query, "size").value_or(0),
                                                       0LL, static_cast<long long>(kIoChunk)));
    StreamedReply out(c, req);
    if (!out.begin("text/plain")) return false;
    for (long long i = 0; i < chunks; ++i) {
        sleep_ms(static_cast<double>(delay));
        std::string chunk = "chunk " + std::to_string(i);
        if (chunk.size() + 1 < size) chunk.append(size - chunk.size() - 1, '.');
        if (!out.write(chunk + "\n")) return false;
    }
    return out.finish();
}

bool read_exact(Connection& c, char* out, size_t len) {
    while (len > 0) {
        ssize_t n = c.read_some(out, len);
        if (n <= 0) return false;
        out += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

// GET /ws: a WebSocket echo server, as ComfyUI's /ws stands behind us. Text and binary frames
// come back unmasked; the text "bytes N" is answered with a binary frame of N bytes and
// "close" makes the server close first; "stall" makes it stop reading (a wedged server) until
// the peer hangs up; a ping gets its pong and a close frame its answer.
// ?greet=N sends N text frames ("greet I") right after the 101.
bool handle_websocket(Connection& c, Request& req) {
    const std::string* key = req.header("sec-websocket-key");
    const std::string* upgrade = req.header("upgrade");
    if (!key || !upgrade || to_lower(*upgrade) != "websocket")
        return reply_error(c, req, 400, "not a WebSocket handshake", "invalid_request_error");
    auto digest = fake::ws::sha1(*key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
        base64(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())) +
        "\r\n\r\n";
    long long greet = query_int(req.query, "greet").value_or(0);
    for (long long i = 0; i < greet; ++i)
        out += fake::ws::frame(fake::ws::Text, "greet " + std::to_string(i));
    if (!c.send_all(out)) return false;
    for (;;) {
        unsigned char hdr[2];
        if (!read_exact(c, reinterpret_cast<char*>(hdr), 2)) return false;
        const auto op = static_cast<fake::ws::Opcode>(hdr[0] & 0x0F);
        uint64_t len = hdr[1] & 0x7F;
        if (len >= 126) {
            unsigned char ext[8];
            const size_t n = len == 126 ? 2 : 8;
            if (!read_exact(c, reinterpret_cast<char*>(ext), n)) return false;
            len = 0;
            for (size_t i = 0; i < n; ++i) len = (len << 8) | ext[i];
        }
        if (!(hdr[1] & 0x80) || len > (64u << 20)) { // clients must mask (RFC 6455 5.1)
            c.send_all(fake::ws::frame(fake::ws::Close, "\x03\xea")); // 1002
            return false;
        }
        char mask[4];
        std::string payload(len, '\0');
        if (!read_exact(c, mask, 4) || !read_exact(c, payload.data(), len)) return false;
        for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= mask[i % 4];
        switch (op) {
        case fake::ws::Close:
            c.send_all(fake::ws::frame(fake::ws::Close, payload));
            return false;
        case fake::ws::Ping:
            if (!c.send_all(fake::ws::frame(fake::ws::Pong, payload))) return false;
            break;
        case fake::ws::Text:
            if (payload == "close") {
                c.send_all(fake::ws::frame(fake::ws::Close, "\x03\xe8"
                                                            "bye")); // 1000
                return false;
            }
            if (payload == "stall") {
                c.stop_reading_until_hangup(10 * 60 * 1000);
                return false;
            }
            if (payload.starts_with("bytes ")) {
                long long n = std::clamp(std::atoll(payload.c_str() + 6), 0LL, 64LL << 20);
                if (!c.send_all(fake::ws::frame(fake::ws::Binary,
                                                std::string(static_cast<size_t>(n), 'b'))))
                    return false;
                break;
            }
            [[fallthrough]];
        default:
            if (!c.send_all(fake::ws::frame(op, payload))) return false;
        }
    }
}

bool route(Connection& c, Request& req, BodyReader& body) {
    const std::string& path = req.path;
    const bool get = req.method == "GET", post = req.method == "POST";
    // Endpoints that consume the request body.
    if (path == "/echo" || path.starts_with("/echo/")) return handle_echo(c, req, body);
    if (post && (path == "/v1/chat/completions" || path == "/chat/completions"))
        return handle_completion(c, req, body, Api::Chat);
    // Endpoints of other servers the daemon routes to (stable-diffusion.cpp's sdapi,
    // audio task servers, llama-server's /props): what arrived comes back.
    if (path == "/props" || path.starts_with("/sdapi/") || path == "/v1/tasks/run" ||
        path == "/v1/audio/voices")
        return handle_echo(c, req, body);
    if (post && (path == "/v1/completions" || path == "/completion"))
        return handle_completion(c, req, body, Api::Text);
    if (post && path == "/v1/embeddings") return handle_embeddings(c, req, body);
    if (post && path == "/v1/audio/transcriptions") return handle_transcription(c, req, body);
    if (post && path == "/v1/audio/speech") return handle_speech(c, req, body);
    // The rest ignore any body, but must still skip it to find the next request.
    if (!body.drain()) return bad_body(c, req);
    if (get && path == g_opt.health_path)
        return reply(c, req, 200, "application/json", R"({"status":"ok"})");
    if (get && path == "/v1/models") return handle_models(c, req);
    if (get && path == "/slots") return handle_slots(c, req);
    if ((get || req.method == "HEAD") && path == "/blob") return handle_blob(c, req);
    if (post && path == "/stop-listening") return handle_stop_listening(c, req);
    if (get && path == "/slow") return handle_slow(c, req);
    if (get && path == "/ws") return handle_websocket(c, req);
    if (get && path == "/") return reply(c, req, 200, "text/plain", req.method + " " + req.target);
    return reply_error(c, req, 404, "Not found: " + req.method + " " + path, "not_found_error");
}

bool handle_request(Connection& c, Request& req) {
    BodyReader body(c, req);
    if (req.expect_continue && body.has_body() && !c.send_all("HTTP/1.1 100 Continue\r\n\r\n"))
        return false;
    if (!g_loaded.load()) {
        // Like llama-server: every endpoint reports 503 until the model is in.
        if (!body.drain()) return bad_body(c, req);
        return reply_error(c, req, 503, "Loading model", "unavailable_error");
    }
    return route(c, req, body);
}

// Serves requests on one connection until it closes. With --http-threads it
// also applies cpp-httplib's keep-alive limits, so the pooled thread is
// released for the next queued connection.
void serve_connection(int fd) {
    Connection conn(fd);
    if (g_opt.hang) return conn.discard_until_eof();
    const bool pooled = g_opt.http_threads > 0;
    for (long long served = 0;; ++served) {
        if (pooled && !conn.wait_readable(g_opt.keepalive_ms)) return; // idle too long
        std::string head;
        auto result = conn.read_head(head);
        if (result == Connection::HeadResult::Closed) return;
        Request req;
        if (result == Connection::HeadResult::TooLarge || !parse_request(head, req)) {
            req.keep_alive = false; // we cannot find the next request's start
            reply_error(conn, req, 400, "Malformed request", "invalid_request_error");
            return;
        }
        if (pooled && served + 1 >= g_opt.keepalive_max) req.keep_alive = false; // last one
        if (!handle_request(conn, req)) return;
    }
}

// --http-threads: accepted connections wait here, first in first out, until
// a pool thread is free (cpp-httplib's ThreadPool queue is unbounded too).
class ConnectionQueue {
public:
    void push(int fd) {
        {
            std::lock_guard lock(mu_);
            fds_.push_back(fd);
        }
        ready_.notify_one();
    }

    int pop() {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [this] { return !fds_.empty(); });
        int fd = fds_.front();
        fds_.pop_front();
        return fd;
    }

private:
    std::mutex mu_;
    std::condition_variable ready_;
    std::deque<int> fds_;
};

ConnectionQueue g_queue;

void start_http_pool() {
    for (long long i = 0; i < g_opt.http_threads; ++i) {
        std::thread([] {
            for (;;) serve_connection(g_queue.pop());
        }).detach();
    }
}

// ---------------------------------------------------------------------------
// Process lifecycle: signals, grandchild, sd_notify, listener

void on_stop_signal(int sig) {
    raw_stderr(sig == SIGTERM ? "fake-upstream: SIGTERM, exiting\n"
                              : "fake-upstream: SIGINT, exiting\n");
    _exit(0); // immediately, even with responses in flight
}

// --sigterm-abort: like llama-server builds that abort() while shutting down.
void on_sigterm_abort(int) {
    raw_stderr("fake-upstream: SIGTERM, aborting\n");
    signal(SIGABRT, SIG_DFL); // so nothing can catch it: the process dies by SIGABRT
    abort();
}

// A SIGABRT death would otherwise leave a core file behind for every test run.
void disable_core_dumps() {
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) std::perror("fake-upstream: setrlimit(RLIMIT_CORE)");
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    if (g_opt.ignore_sigterm) sa.sa_handler = SIG_IGN;
    if (g_opt.sigterm_abort) {
        disable_core_dumps();
        sa.sa_handler = on_sigterm_abort;
    }
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, nullptr);
}

// A child that outlives us unless someone kills our whole process group:
// no setsid/setpgid, no PR_SET_PDEATHSIG, default signal dispositions.
void fork_grandchild() {
    pid_t pid = fork();
    if (pid < 0) {
        std::perror("fake-upstream: fork");
        std::exit(1);
    }
    if (pid == 0) {
        for (;;) sleep(3600);
    }
    std::fprintf(stderr, "fake-upstream: grandchild pid %d\n", static_cast<int>(pid));
    append_pid_line(pid);
    // Auto-reap it if it is killed while we live, so it does not linger as a zombie.
    signal(SIGCHLD, SIG_IGN);
}

// Minimal sd_notify(3): one datagram to $NOTIFY_SOCKET ('@' = abstract).
void notify(const char* state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) {
        std::fprintf(stderr, "fake-upstream: --notify-ready but NOTIFY_SOCKET is unset\n");
        return;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t len = std::strlen(path);
    if (len >= sizeof(addr.sun_path)) {
        std::fprintf(stderr, "fake-upstream: NOTIFY_SOCKET path too long\n");
        return;
    }
    std::memcpy(addr.sun_path, path, len);
    bool abstract = path[0] == '@';
    if (abstract) addr.sun_path[0] = '\0';
    auto addr_len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (abstract ? 0 : 1));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        std::perror("fake-upstream: notify socket");
        return;
    }
    ssize_t n;
    do {
        n = sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                   addr_len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) std::fprintf(stderr, "fake-upstream: notify %s: %s\n", path, std::strerror(errno));
    close(fd);
}

[[noreturn]] void exit_bind_failed() {
    std::fprintf(stderr, "main: couldn't bind HTTP server socket, hostname: %s, port: %lld\n",
                 g_opt.host.c_str(), g_opt.port);
    std::exit(1);
}

// --bind-fail-once/--bind-fail-always: lose the race for the port. The marker
// file is created exclusively, so exactly one start fails.
bool simulate_bind_failure() {
    if (g_opt.bind_fail_always) return true;
    if (g_opt.bind_fail_once.empty()) return false;
    int fd = open(g_opt.bind_fail_once.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
        close(fd);
        return true;
    }
    if (errno == EEXIST) return false;
    std::fprintf(stderr, "fake-upstream: cannot create %s: %s\n", g_opt.bind_fail_once.c_str(),
                 std::strerror(errno));
    std::exit(1);
}

// Binds immediately (like llama-server); returns the listening fd and port.
int open_listener(int& bound_port) {
    if (simulate_bind_failure()) exit_bind_failed();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string port = std::to_string(g_opt.port);
    if (int rc = getaddrinfo(g_opt.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        std::fprintf(stderr, "fake-upstream: bad --host %s: %s\n", g_opt.host.c_str(),
                     gai_strerror(rc));
        std::exit(1);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    // --no-reuseaddr: like older llama-server, a port with TIME-WAIT sockets cannot be bound.
    bool reuse_ok =
        g_opt.no_reuseaddr || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0;
    if (fd < 0 || !reuse_ok || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        // llama-server's exact words (bind and listen are one step there)
        if (g_opt.no_reuseaddr) exit_bind_failed();
        std::fprintf(stderr, "fake-upstream: cannot listen on %s:%s: %s\n", g_opt.host.c_str(),
                     port.c_str(), std::strerror(errno));
        std::exit(1);
    }
    freeaddrinfo(res);
    sockaddr_storage ss{};
    socklen_t ss_len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &ss_len);
    bound_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return fd;
}

// --llama-log: llama-server's first lines (stderr, unbuffered). The first
// already says "listening" although every request gets 503 until loaded.
void print_llama_start_lines(int port) {
    if (!g_opt.llama_log) return;
    long long threads = g_opt.http_threads > 0 ? g_opt.http_threads : g_opt.report_threads;
    std::fprintf(stderr,
                 "main: HTTP server is listening, hostname: %s, port: %d, http threads: %lld\n",
                 g_opt.host.c_str(), port, threads);
    std::fprintf(stderr, "main: loading model\n");
}

void finish_loading(int port) {
    g_loaded.store(true);
    if (g_opt.llama_log) {
        // Replaces our own ready line, so only this line means "ready".
        std::fprintf(stderr, "main: server is listening on http://%s:%d - starting the main loop\n",
                     g_opt.host.c_str(), port);
    } else if (g_opt.log_lines >= 2) {
        bool v6 = g_opt.host.find(':') != std::string::npos;
        std::printf("fake-upstream: server is listening on http://%s%s%s:%d\n", v6 ? "[" : "",
                    g_opt.host.c_str(), v6 ? "]" : "", port);
    }
    if (g_opt.notify_ready) notify("READY=1\nSTATUS=ready");
}

void start_timers(int port) {
    if (g_opt.load_delay_ms == 0) {
        finish_loading(port);
    } else {
        std::thread([port] {
            sleep_ms(static_cast<double>(g_opt.load_delay_ms) - ms_since(g_start));
            finish_loading(port);
        }).detach();
    }
    if (g_opt.exit_after_ms >= 0) {
        std::thread([] {
            sleep_ms(static_cast<double>(g_opt.exit_after_ms) - ms_since(g_start));
            raw_stderr("fake-upstream: exiting by --exit-after-ms\n");
            std::fflush(stdout);
            _exit(5); // _exit: other threads are still running
        }).detach();
    }
}

void print_startup_lines(int port) {
    if (g_opt.port == 0) std::printf("fake-upstream: port %d\n", port);
    if (g_opt.log_lines >= 1)
        std::printf("fake-upstream: loading model %s on port %d\n", g_opt.model.c_str(), port);
    for (long long i = 3; i <= g_opt.log_lines; ++i)
        std::printf("fake-upstream: log line %lld of %lld\n", i, g_opt.log_lines);
}

// Hands an accepted connection to the pool's queue or to a thread of its own.
void dispatch(int fd) {
    if (g_opt.http_threads > 0) return g_queue.push(fd);
    try {
        std::thread(serve_connection, fd).detach();
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "fake-upstream: cannot start thread: %s\n", e.what());
        close(fd);
    }
}

[[noreturn]] void accept_loop(int listen_fd) {
    for (;;) {
        int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINVAL) pause(); // /stop-listening: no more connections, ever
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                sleep_ms(50); // transient exhaustion: back off instead of spinning
            continue;         // EINTR, ECONNABORTED, ...
        }
        int one = 1;
        // SSE chunks leave at once; --no-nodelay keeps Nagle on, as llama-server does.
        if (!g_opt.no_nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        dispatch(fd);
    }
}

} // namespace

int main(int argc, char** argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0); // tests read stdout through a pipe
    parse_args(argc, argv);
    if (g_opt.crash_at_start) {
        std::fprintf(stderr, "fake-upstream: simulated crash at start\n");
        return 3;
    }
    append_pid_line(getpid());
    if (g_opt.fork_grandchild) fork_grandchild(); // before threads and sockets exist
    install_signal_handlers();
    int port = 0;
    int listen_fd = open_listener(port);
    g_listen_fd = listen_fd;
    print_llama_start_lines(port);
    print_startup_lines(port);
    if (g_opt.notify_ready) notify("STATUS=loading");
    start_http_pool();
    start_timers(port);
    accept_loop(listen_fd);
}

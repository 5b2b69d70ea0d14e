// llama-swap: command line, configuration, listeners; everything else lives in the library.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <getopt.h>
#include <string>

#include "build_config.h"
#include "config/config.h"
#include "daemon.h"
#include "sd/listen.h"
#include "supervisor/group_guard.h"
#include "tls/tls.h"
#include "util/log.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/llama-swap/config.yaml";

void print_help() {
    printf("Usage: llama-swap [OPTIONS]\n"
           "\n"
           "OpenAI-compatible proxy that starts, stops and swaps upstream inference servers\n"
           "(llama-server, vLLM, ...) according to the model of each request.\n"
           "\n"
           "Options:\n"
           "  -c, --config FILE     configuration file (default %s unless --config-dir\n"
           "                        is given)\n"
           "      --config-dir DIR  read DIR's *.yaml and *.yml files too (in name order, after\n"
           "                        FILE if given) and merge them into one configuration\n"
           "  -l, --listen ADDR     address to listen on when no socket is passed by systemd:\n"
           "                        :PORT, HOST:PORT, [V6]:PORT or unix:PATH (default :8080,\n"
           "                        :8443 with TLS)\n"
           "      --tls-cert-file F  serve HTTPS with this certificate chain (PEM); with\n"
           "                        --tls-key-file, both or neither; SIGHUP reloads them\n"
           "      --tls-key-file F   the certificate's private key (PEM)\n"
           "  -w, --watch-config    reload the configuration when the file or a file of the\n"
           "                        directory changes\n"
           "      --log-target T    where logs go: auto (journald when stderr is the journal),\n"
           "                        journal or stderr (default auto)\n"
           "  -t, --check-config    validate the configuration and exit (0 valid, 78 invalid)\n"
           "  -s, --strict          configuration warnings (unknown keys, ...) are errors: at\n"
           "                        start, on reload and with --check-config\n"
           "  -v, --version         print the version and exit\n"
           "  -h, --help            print this help and exit\n"
           "\n"
           "Signals: SIGTERM/SIGINT stop gracefully (a second one forces), SIGHUP reloads the "
           "configuration.\n",
           kDefaultConfig);
}

struct Args {
    ls::config::ConfigSources sources; // the default file when neither option is given
    std::string listen;                // default :8080, or :8443 with TLS
    std::string tls_cert, tls_key;
    bool check_only = false;
    bool strict = false;
    bool watch = false;
    ls::LogTarget log_target = ls::LogTarget::Auto;
};

// Returns -1 to go on, or an exit status.
int parse_args(int argc, char** argv, Args& args) {
    static const option kOptions[] = {
        {"config", required_argument, nullptr, 'c'},
        {"config-dir", required_argument, nullptr, 'D'},
        {"listen", required_argument, nullptr, 'l'},
        {"check-config", no_argument, nullptr, 't'},
        {"strict", no_argument, nullptr, 's'},
        {"watch-config", no_argument, nullptr, 'w'},
        {"version", no_argument, nullptr, 'v'},
        {"log-target", required_argument, nullptr, 'L'},
        {"tls-cert-file", required_argument, nullptr, 'C'},
        {"tls-key-file", required_argument, nullptr, 'K'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    int c;
    // Go's flag package (the original) also accepts single-dash long options.
    while ((c = getopt_long_only(argc, argv, "c:l:tswvh", kOptions, nullptr)) != -1) {
        switch (c) {
        case 'c':
        case 'D':
            if (!*optarg) {
                fprintf(stderr, "llama-swap: --%s needs a %s\n", c == 'c' ? "config" : "config-dir",
                        c == 'c' ? "file" : "directory");
                return 2;
            }
            (c == 'c' ? args.sources.file : args.sources.dir) = optarg;
            break;
        case 'l':
            args.listen = optarg;
            break;
        case 'C':
            args.tls_cert = optarg;
            break;
        case 'K':
            args.tls_key = optarg;
            break;
        case 't':
            args.check_only = true;
            break;
        case 's':
            args.strict = true;
            break;
        case 'w':
            args.watch = true;
            break;
        case 'L':
            if (!ls::parse_log_target(optarg, args.log_target)) {
                fprintf(stderr, "llama-swap: --log-target must be auto, journal or stderr\n");
                return 2;
            }
            break;
        case 'v':
            printf("llama-swap %s\n", LS_VERSION);
            return 0;
        case 'h':
            print_help();
            return 0;
        default:
            fprintf(stderr, "Try 'llama-swap --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "llama-swap: unexpected argument '%s'\nTry 'llama-swap --help'.\n",
                argv[optind]);
        return 2;
    }
    if (args.sources.file.empty() && args.sources.dir.empty()) args.sources.file = kDefaultConfig;
    if (args.tls_cert.empty() != args.tls_key.empty()) {
        fprintf(stderr, "llama-swap: --tls-cert-file and --tls-key-file go together\n");
        return 2;
    }
    if (args.listen.empty()) args.listen = args.tls_cert.empty() ? ":8080" : ":8443";
    return -1;
}

} // namespace

int main(int argc, char** argv) {
    Args args;
    if (int rc = parse_args(argc, argv, args); rc >= 0) return rc;

    auto cfg = ls::config::load_config_sources(args.sources);
    if (!cfg) {
        fprintf(stderr, "%s\n", cfg.error().message.c_str());
        return ls::config::kExitConfig;
    }
    for (const auto& w : cfg->warnings) fprintf(stderr, "%s (warning)\n", w.render().c_str());
    const size_t warnings = cfg->warnings.size();
    if (args.strict && warnings > 0) {
        fprintf(stderr, "%s: %zu warning%s, which --strict makes errors\n", cfg->path.c_str(),
                warnings, warnings == 1 ? "" : "s");
        return ls::config::kExitConfig;
    }
    if (args.check_only) {
        printf("%s: configuration is valid (%zu model%s, %zu warning%s)\n", cfg->path.c_str(),
               cfg->models.size(), cfg->models.size() == 1 ? "" : "s", warnings,
               warnings == 1 ? "" : "s");
        return 0;
    }

    // The certificate is read before anything starts: a wrong path is a start-up error.
    std::shared_ptr<ls::tls::Context> tls;
    if (!args.tls_cert.empty()) {
        auto ctx = ls::tls::Context::server(args.tls_cert, args.tls_key);
        if (!ctx) {
            fprintf(stderr, "llama-swap: %s\n", ctx.error().message.c_str());
            return 1;
        }
        tls = std::move(ctx.value());
    }

    ls::set_log_target(args.log_target);
    signal(SIGPIPE, SIG_IGN);
    // The guard is forked before anything else exists, so it holds no sockets or threads.
    ls::supervisor::GroupGuard guard;
    if (auto r = guard.start(); !r)
        LOG_WARN("cannot start the process-group guard: %s", r.error().message.c_str());

    struct ev_loop* loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_SIGNALFD);
    if (!loop) {
        fprintf(stderr, "llama-swap: cannot initialise the event loop\n");
        return 1;
    }
    guard.attach(loop); // a guard that dies is replaced
    int status;
    {
        ls::Daemon daemon(loop, std::move(cfg.value()), &guard);
        daemon.enable_reload(args.sources, args.watch, args.strict);
        if (tls) daemon.enable_tls(args.tls_cert, args.tls_key, tls);
        auto passed = ls::sd::passed_sockets();
        if (passed.empty()) {
            auto sock = ls::sd::listen_on(args.listen);
            if (!sock) {
                LOG_ERROR("%s", sock.error().message.c_str());
                return 1;
            }
            passed.push_back(std::move(sock.value()));
        }
        for (auto& s : passed)
            if (auto r = daemon.add_listener(std::move(s)); !r) {
                LOG_ERROR("%s", r.error().message.c_str());
                return 1;
            }
        status = daemon.run();
    }
    return status;
}

// Small HTTP building blocks and helpers: headers, query strings, error bodies, request body
// spooling, status texts, the log line ring, upstream URLs and the port allocator.
#include <criterion/criterion.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/body.h"
#include "http/error_body.h"
#include "http/head_writer.h"
#include "http/headers.h"
#include "http/packed_headers.h"
#include "http/request.h"
#include "http/status.h"
#include "logs/line_ring.h"
#include "proxy/upstream_address.h"
#include "supervisor/port_allocator.h"
#include "util/unique_fd.h"

using namespace ls::http;
using namespace std::literals;

// ------------------------------------------------------------------ headers

Test(headers, iequals) {
    cr_assert(iequals("Content-Length", "content-length"));
    cr_assert(iequals("X-ABC", "x-abc"));
    cr_assert(iequals("", ""));
    cr_assert_not(iequals("Content-Length", "Content-Lengt"));
    cr_assert_not(iequals("abc", "abd"));
    cr_assert_not(iequals("a", ""));
}

// Every pair of byte values at every position of the byte-wise (short) and word-wise
// (8 bytes and more, overlapping last word) paths: equal exactly when ASCII lowercase says so.
Test(headers, iequals_every_byte_pair_every_position) {
    auto fold = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
    size_t mismatches = 0;
    std::string first;
    for (size_t n : {1u, 5u, 8u, 9u, 13u, 16u, 17u}) {
        for (size_t at = 0; at < n; ++at) {
            std::string a(n, 'k'), b(n, 'K');
            for (int x = 0; x < 256; ++x) {
                for (int y = 0; y < 256; ++y) {
                    a[at] = static_cast<char>(x);
                    b[at] = static_cast<char>(y);
                    const bool want =
                        fold(static_cast<unsigned char>(x)) == fold(static_cast<unsigned char>(y));
                    if (iequals(a, b) != want && mismatches++ == 0)
                        first = "n=" + std::to_string(n) + " at=" + std::to_string(at) +
                                " x=" + std::to_string(x) + " y=" + std::to_string(y);
                }
            }
        }
    }
    cr_assert_eq(mismatches, 0u, "%zu mismatches, the first: %s", mismatches, first.c_str());
}

Test(headers, field_of_names) {
    cr_assert(field_of("Content-Length") == Field::ContentLength);
    cr_assert(field_of("CONTENT-TYPE") == Field::ContentType);
    cr_assert(field_of("connection") == Field::Connection);
    cr_assert(field_of("Keep-Alive") == Field::KeepAlive);
    cr_assert(field_of("TE") == Field::Te);
    cr_assert(field_of("Trailer") == Field::Trailer);
    cr_assert(field_of("upgrade") == Field::Upgrade);
    cr_assert(field_of("Transfer-Encoding") == Field::TransferEncoding);
    cr_assert(field_of("Proxy-Connection") == Field::ProxyConnection);
    cr_assert(field_of("Proxy-Authenticate") == Field::ProxyAuthenticate);
    cr_assert(field_of("Proxy-Authorization") == Field::ProxyAuthorization);
    cr_assert(field_of("Authorization") == Field::Authorization);
    cr_assert(field_of("X-Api-Key") == Field::XApiKey);
    cr_assert(field_of("Host") == Field::Host);
    cr_assert(field_of("DATE") == Field::Date);
    cr_assert(field_of("Expect") == Field::Expect);
    // Same lengths, other names; near misses.
    cr_assert(field_of("tE-") == Field::Other);
    cr_assert(field_of("hosT2") == Field::Other);
    cr_assert(field_of("Traileq") == Field::Other);
    cr_assert(field_of("Upgrades") == Field::Other);
    cr_assert(field_of("content-lengtH ") == Field::Other);
    cr_assert(field_of("Content_Length") == Field::Other);
    cr_assert(field_of("Accept-Encoding") == Field::Other);
    cr_assert(field_of("") == Field::Other);
    cr_assert(is_hop_by_hop(Field::Te) && is_hop_by_hop(Field::KeepAlive));
    cr_assert(!is_hop_by_hop(Field::ContentLength) && !is_hop_by_hop(Field::Host));
}

Test(headers, header_has_token) {
    cr_assert(header_has_token("keep-alive, Upgrade", "upgrade"));
    cr_assert(header_has_token("close", "close"));
    cr_assert(header_has_token("  Close\t", "close"));
    cr_assert(header_has_token("a,,b", "b"));
    cr_assert(header_has_token("gzip, chunked", "chunked"));
    cr_assert_not(header_has_token("closed", "close"));
    cr_assert_not(header_has_token("keep-alive", "alive"));
    cr_assert_not(header_has_token("", "close"));
    cr_assert_not(header_has_token("a, b", "a, b"));
}

Test(headers, head_writer_appends_and_grows) {
    std::string out = "kept|";
    {
        HeadWriter w(out, 8); // room for 8: the rest makes it grow
        w << "GET "sv << std::string(300, 'p') << " HTTP/1.1\r\n"sv;
    }
    cr_assert(out == "kept|GET " + std::string(300, 'p') + " HTTP/1.1\r\n");
    {
        HeadWriter w(out, 1024); // room to spare: cut to what was written
        w << "X: 1\r\n"sv;
    }
    cr_assert(out.ends_with(" HTTP/1.1\r\nX: 1\r\n"));
    cr_assert_eq(out.size(), 5 + 4 + 300 + 11 + 6);
}

Test(headers, connection_names) {
    // What a Connection header names beyond the hop-by-hop set: nothing for the usual values.
    const std::string keep = "Keep-Alive", close = " close ", listed = "keep-alive, X-Secret";
    cr_assert(connection_names(nullptr).empty());
    cr_assert(connection_names(&keep).empty());
    cr_assert(connection_names(&close).empty());
    cr_assert(connection_names(&listed) == listed);
    // A field the header names is still hop-by-hop with the value as it comes back.
    cr_assert(is_hop_by_hop(Field::Other, "x-secret", connection_names(&listed)));
    cr_assert_not(is_hop_by_hop(Field::Other, "x-secret", connection_names(&keep)));
}

Test(headers, header_list_find_set_remove) {
    HeaderList h;
    cr_assert(h.empty());
    cr_assert_null(h.find("x"));
    h.add("Content-Type", "text/plain");
    h.add("X-Multi", "one");
    h.add("x-multi", "two");
    h.add("Accept", "*/*");
    cr_assert_not(h.empty());
    const std::string* v = h.find("content-type");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->c_str(), "text/plain");
    v = h.find("X-MULTI");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->c_str(), "one", "find returns the first value");
    cr_assert(h.has("accept"));
    cr_assert_not(h.has("accep"));

    h.set("X-Multi", "three"); // replaces every X-Multi, appends at the end
    cr_assert_eq(h.items().size(), 3u);
    v = h.find("x-multi");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->c_str(), "three");
    cr_assert_str_eq(h.items().back().name.c_str(), "X-Multi");
    cr_assert_str_eq(h.items()[0].name.c_str(), "Content-Type");
    cr_assert_str_eq(h.items()[1].name.c_str(), "Accept");

    h.add("x-multi", "four");
    h.remove("X-MULTI");
    cr_assert_not(h.has("x-multi"));
    cr_assert_eq(h.items().size(), 2u);
    h.remove("not-there");
    cr_assert_eq(h.items().size(), 2u);

    h.set("New", "n");
    cr_assert(h.has("new"));
    h.clear();
    cr_assert(h.empty());
}

Test(headers, packed_round_trip) {
    cr_assert(PackedHeaders().empty());
    cr_assert(PackedHeaders().unpack().empty());
    HeaderList h;
    h.add("Content-Type", "application/json");
    h.add("x-empty", "");
    h.add("X-Bin", std::string("a\0b\r", 4));
    h.add("x-dup", "1");
    h.add("X-Dup", std::string(70000, 'v')); // past any short length field
    const PackedHeaders p(h);
    cr_assert(!p.empty());
    // Names, values and one 4-byte length each: nothing per field beyond that.
    size_t text = 0;
    for (const Header& f : h.items()) text += f.name.size() + f.value.size() + 8;
    cr_assert_eq(p.bytes(), text);
    const HeaderList back = p.unpack();
    cr_assert_eq(back.items().size(), h.items().size());
    for (size_t i = 0; i < h.items().size(); ++i) {
        cr_assert(back.items()[i].name == h.items()[i].name, "name %zu", i);
        cr_assert(back.items()[i].value == h.items()[i].value, "value %zu", i);
    }
    cr_assert(*back.find("x-dup") == "1"); // order kept: the first value wins
}

Test(headers, hop_by_hop_fixed_names) {
    HeaderList none;
    for (const char* name :
         {"Connection", "keep-alive", "Proxy-Connection", "Proxy-Authenticate",
          "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "UPGRADE"})
        cr_assert(is_hop_by_hop(name, none), "%s is hop-by-hop", name);
    for (const char* name : {"Content-Type", "Content-Length", "Authorization", "Host", "Accept",
                             "X-Request-Id", "Trailers"})
        cr_assert_not(is_hop_by_hop(name, none), "%s is end-to-end", name);
}

Test(headers, hop_by_hop_named_in_connection) {
    HeaderList h;
    h.add("connection", "close, X-Private-Thing ,x-other");
    h.add("X-Private-Thing", "secret");
    cr_assert(is_hop_by_hop("X-Private-Thing", h));
    cr_assert(is_hop_by_hop("x-private-thing", h));
    cr_assert(is_hop_by_hop("X-Other", h));
    cr_assert_not(is_hop_by_hop("X-Private", h));
    cr_assert_not(is_hop_by_hop("Content-Type", h));
}

// ------------------------------------------------------------------ request helpers

Test(request, percent_decode) {
    auto check = [](const char* in, const std::string& want) {
        std::string got = percent_decode(in);
        cr_assert(got == want, "percent_decode(%s) = '%s', expected '%s'", in, got.c_str(),
                  want.c_str());
    };
    check("plain", "plain");
    check("%41%2f%2F", "A//");
    check("a+b", "a b");
    check("llama%203%3A8b", "llama 3:8b");
    check("%", "%");
    check("%4", "%4");
    check("%zz", "%zz");
    check("100%", "100%");
    check("%e2%82%AC", "\xe2\x82\xac");
    check("%2B", "+");
    check("", "");
    check("%00x", std::string("\0x", 2));
}

Test(request, query_param) {
    std::string v;
    cr_assert(query_param("model=llama%203&x=1", "model", v));
    cr_assert_str_eq(v.c_str(), "llama 3");
    cr_assert(query_param("a=1&b=two&c=3", "b", v));
    cr_assert_str_eq(v.c_str(), "two");
    cr_assert(query_param("a=1&c=3", "c", v));
    cr_assert_str_eq(v.c_str(), "3");
    cr_assert(query_param("flag&x=1", "flag", v));
    cr_assert_str_eq(v.c_str(), "");
    cr_assert(query_param("empty=&x=1", "empty", v));
    cr_assert_str_eq(v.c_str(), "");
    cr_assert(query_param("a=1&a=2", "a", v));
    cr_assert_str_eq(v.c_str(), "1", "first value wins");
    cr_assert(query_param("my%20key=v+w", "my key", v));
    cr_assert_str_eq(v.c_str(), "v w");
    cr_assert(query_param("k=a=b", "k", v));
    cr_assert_str_eq(v.c_str(), "a=b");

    v = "untouched";
    cr_assert_not(query_param("a=1&b=2", "c", v));
    cr_assert_not(query_param("", "a", v));
    cr_assert_not(query_param("ab=1", "a", v));
    cr_assert_not(query_param("a", "ab", v));
    cr_assert_str_eq(v.c_str(), "untouched");
}

// ------------------------------------------------------------------ error bodies

namespace {
struct ParsedError {
    std::string message, type, code;
    bool param_null = false;
};

ParsedError parse_error_json(const std::string& text) {
    cJSON* root = cJSON_Parse(text.c_str());
    cr_assert_not_null(root, "not JSON: %s", text.c_str());
    cJSON* err = cJSON_GetObjectItemCaseSensitive(root, "error");
    cr_assert(cJSON_IsObject(err), "no error object: %s", text.c_str());
    ParsedError p;
    cJSON* m = cJSON_GetObjectItemCaseSensitive(err, "message");
    cJSON* t = cJSON_GetObjectItemCaseSensitive(err, "type");
    cJSON* c = cJSON_GetObjectItemCaseSensitive(err, "code");
    cJSON* param = cJSON_GetObjectItemCaseSensitive(err, "param");
    cr_assert(cJSON_IsString(m) && cJSON_IsString(t) && cJSON_IsString(c), "fields: %s",
              text.c_str());
    p.message = m->valuestring;
    p.type = t->valuestring;
    p.code = c->valuestring;
    p.param_null = cJSON_IsNull(param);
    cJSON_Delete(root);
    return p;
}

void expect_error_json(int status, const char* type) {
    std::string text = error_json(status, "something failed", "some_code");
    ParsedError p = parse_error_json(text);
    cr_assert_str_eq(p.message.c_str(), "something failed");
    cr_assert_str_eq(p.type.c_str(), type, "status %d", status);
    cr_assert_str_eq(p.code.c_str(), "some_code");
    cr_assert(p.param_null);
    cr_assert_eq(text.back(), '\n');
}
} // namespace

Test(error_body, types_by_status) {
    expect_error_json(400, "invalid_request_error");
    expect_error_json(401, "authentication_error");
    expect_error_json(404, "invalid_request_error");
    expect_error_json(413, "invalid_request_error");
    expect_error_json(429, "rate_limit_error");
    expect_error_json(500, "server_error");
    expect_error_json(502, "server_error");
    expect_error_json(503, "server_error");
}

Test(error_body, explicit_type) {
    ParsedError p = parse_error_json(error_json(503, "m", "c", "overloaded_error"));
    cr_assert_str_eq(p.type.c_str(), "overloaded_error");
}

Test(error_body, message_with_special_characters_round_trips) {
    const std::string msg = "model \"a\\b\" not\nfound\r\t\x01\x1f caf\xc3\xa9";
    ParsedError p = parse_error_json(error_json(404, msg, "model_\"x\""));
    cr_assert(p.message == msg, "message '%s'", p.message.c_str());
    cr_assert_str_eq(p.code.c_str(), "model_\"x\"");
}

Test(error_body, json_escape) {
    std::string got = json_escape("a\"b\\c\nd\re\tf\x01g\x1fh\x7f");
    cr_assert_str_eq(got.c_str(), "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\x7f");
    got = json_escape("caf\xc3\xa9 / ok");
    cr_assert_str_eq(got.c_str(), "caf\xc3\xa9 / ok");
    got = json_escape("");
    cr_assert_str_eq(got.c_str(), "");
    got = json_escape(std::string_view("\0", 1));
    cr_assert_str_eq(got.c_str(), "\\u0000");
}

// ------------------------------------------------------------------ body spooling

namespace {
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/ls-unit-body-XXXXXX";
        char* p = mkdtemp(tmpl);
        cr_assert_not_null(p, "mkdtemp: %s", strerror(errno));
        path = p;
    }
    ~TempDir() { rmdir(path.c_str()); }
    size_t entries() const {
        size_t n = 0;
        DIR* d = opendir(path.c_str());
        if (!d) return 0;
        while (dirent* e = readdir(d))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++n;
        closedir(d);
        return n;
    }
};

std::string pattern(size_t n, size_t salt) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + salt * 7 + (i >> 8)) & 0xff);
    return s;
}

std::string read_all(const Body& b) {
    std::string out(b.size(), '\0');
    size_t off = 0;
    while (off < out.size()) {
        auto r = b.read_at(off, out.data() + off, 333); // odd size: crosses every boundary
        cr_assert(r.ok(), "read_at: %s", r.ok() ? "" : r.error().message.c_str());
        cr_assert_gt(r.value(), 0u);
        off += r.value();
    }
    return out;
}
} // namespace

Test(body, stays_in_memory_under_the_limit) {
    TempDir dir;
    Body b(100, &dir.path);
    const std::string a = pattern(60, 1), c = pattern(40, 2);
    cr_assert(b.append(a.data(), a.size()).ok());
    cr_assert(b.append(c.data(), c.size()).ok()); // exactly at the limit: still memory
    cr_assert_not(b.spooled());
    cr_assert_eq(b.size(), 100u);
    cr_assert(b.memory() == a + c);
    std::string all = read_all(b);
    cr_assert(all == a + c);
}

Test(body, spools_past_the_limit) {
    TempDir dir;
    Body b(64, &dir.path);
    std::string want;
    for (size_t i = 0; i < 10; ++i) {
        std::string piece = pattern(25 + i, i);
        cr_assert(b.append(piece.data(), piece.size()).ok());
        want += piece;
        cr_assert_eq(b.size(), want.size());
        cr_assert_eq(b.spooled(), want.size() > 64, "after %zu bytes", want.size());
    }
    cr_assert(b.spooled());
    cr_assert_geq(b.fd(), 0);
    cr_assert_eq(dir.entries(), 0u, "the spool file is unlinked (O_TMPFILE)");

    std::string all = read_all(b);
    cr_assert(all == want);

    // A read straddling the bytes that were in memory and those appended after the spill.
    char buf[40];
    auto r = b.read_at(40, buf, sizeof buf);
    cr_assert(r.ok());
    cr_assert_eq(r.value(), sizeof buf);
    cr_assert(std::string(buf, sizeof buf) == want.substr(40, 40));

    // Reads at and past the end.
    r = b.read_at(want.size() - 5, buf, sizeof buf);
    cr_assert(r.ok());
    cr_assert_eq(r.value(), 5u);
    cr_assert(std::string(buf, 5) == want.substr(want.size() - 5));
    r = b.read_at(want.size(), buf, sizeof buf);
    cr_assert(r.ok());
    cr_assert_eq(r.value(), 0u);
    r = b.read_at(want.size() + 100, buf, sizeof buf);
    cr_assert(r.ok());
    cr_assert_eq(r.value(), 0u);

    b.clear();
    cr_assert_not(b.spooled());
    cr_assert_eq(b.size(), 0u);
}

Test(body, single_append_larger_than_the_limit) {
    TempDir dir;
    Body b(16, &dir.path);
    const std::string big = pattern(100000, 9);
    cr_assert(b.append(big.data(), big.size()).ok());
    cr_assert(b.spooled());
    cr_assert_eq(b.size(), big.size());
    std::string all = read_all(b);
    cr_assert(all == big);
}

Test(body, spool_dir_missing_falls_back_to_memfd) {
    const std::string missing = "/nonexistent/ls-unit-spool";
    Body b(8, &missing);
    const std::string data = pattern(50, 3);
    cr_assert(b.append(data.data(), data.size()).ok());
    cr_assert(b.spooled());
    std::string all = read_all(b);
    cr_assert(all == data);
}

Test(body, empty_reads) {
    Body b;
    char c;
    auto r = b.read_at(0, &c, 1);
    cr_assert(r.ok());
    cr_assert_eq(r.value(), 0u);
    cr_assert_eq(b.size(), 0u);
    cr_assert_not(b.spooled());
}

Test(body, move_keeps_contents) {
    TempDir dir;
    Body a(10, &dir.path);
    const std::string data = pattern(30, 4);
    cr_assert(a.append(data.data(), data.size()).ok());
    Body b = std::move(a);
    cr_assert(b.spooled());
    std::string all = read_all(b);
    cr_assert(all == data);
}

Test(body, skipped_bytes_keep_their_offsets_and_are_not_read) {
    // Bytes spliced past the spool count in size(); what comes after them lands at its own
    // offset (the zero-copy upload sends the body's tail from there).
    TempDir dir;
    Body b(16, &dir.path);
    const std::string head = pattern(40, 5), tail = pattern(4096, 6);
    cr_assert(b.append(head.data(), head.size()).ok());
    cr_assert(b.skip(1000000).ok());
    cr_assert(b.append(tail.data(), tail.size()).ok());
    cr_assert_eq(b.size(), 40u + 1000000u + 4096u);
    std::string got(tail.size(), '\0');
    auto r = b.read_at(40 + 1000000, got.data(), got.size());
    cr_assert(r.ok() && r.value() == tail.size());
    cr_assert(got == tail);
    r = b.read_at(0, got.data(), 40);
    cr_assert(r.ok() && r.value() == 40u);
    cr_assert(got.substr(0, 40) == head);
    // Any read touching the skipped bytes is refused, not answered with the file's hole.
    r = b.read_at(39, got.data(), 2);
    cr_assert_not(r.ok());
    r = b.read_at(40 + 1000000 - 1, got.data(), 2);
    cr_assert_not(r.ok());
    struct stat st;
    cr_assert_eq(fstat(b.fd(), &st), 0);
    cr_assert_lt(static_cast<size_t>(st.st_blocks) * 512, 1000000u, "the skip takes no disk");
    // A body in memory has nothing to skip from.
    Body m(1 << 20, &dir.path);
    cr_assert(m.append(head.data(), head.size()).ok());
    cr_assert_not(m.skip(10).ok());
}

Test(body, append_from_pipe_and_spool_views) {
    // What the connection does with a spooled body: pipe → file, then a view of the pages.
    TempDir dir;
    Body b(16, &dir.path);
    const std::string first = pattern(100, 8), piped = pattern(200000, 9);
    cr_assert(b.append(first.data(), first.size()).ok());
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 256 * 1024);
    size_t off = 0;
    while (off < piped.size()) { // through the pipe in pieces, as splice brings them
        const size_t n = std::min<size_t>(65537, piped.size() - off);
        cr_assert_eq(write(p[1], piped.data() + off, n), static_cast<ssize_t>(n));
        cr_assert(b.append_from_pipe(p[0], n).ok());
        off += n;
    }
    close(p[0]);
    close(p[1]);
    cr_assert_eq(b.size(), first.size() + piped.size());
    cr_assert(read_all(b) == first + piped);
    for (size_t at : {size_t{0}, size_t{99}, size_t{4095}, size_t{4097}, size_t{150001}}) {
        const size_t len = std::min<size_t>(30000, b.size() - at);
        SpoolView v(b.fd(), at, len);
        cr_assert(v.valid());
        cr_assert(std::string(v.data(), len) == (first + piped).substr(at, len), "at %zu", at);
    }
}

// ------------------------------------------------------------------ status

Test(status, texts) {
    cr_assert_str_eq(status_text(100), "Continue");
    cr_assert_str_eq(status_text(200), "OK");
    cr_assert_str_eq(status_text(204), "No Content");
    cr_assert_str_eq(status_text(400), "Bad Request");
    cr_assert_str_eq(status_text(401), "Unauthorized");
    cr_assert_str_eq(status_text(404), "Not Found");
    cr_assert_str_eq(status_text(408), "Request Timeout");
    cr_assert_str_eq(status_text(413), "Content Too Large");
    cr_assert_str_eq(status_text(429), "Too Many Requests");
    cr_assert_str_eq(status_text(431), "Request Header Fields Too Large");
    cr_assert_str_eq(status_text(500), "Internal Server Error");
    cr_assert_str_eq(status_text(502), "Bad Gateway");
    cr_assert_str_eq(status_text(503), "Service Unavailable");
    cr_assert_str_eq(status_text(504), "Gateway Timeout");
    cr_assert_str_eq(status_text(299), "Unknown");
    cr_assert_str_eq(status_text(0), "Unknown");
    cr_assert_str_eq(status_text(-1), "Unknown");
}

// ------------------------------------------------------------------ line ring

Test(line_ring, bounded_by_bytes_newest_win) {
    ls::logs::LineRing ring(10);
    ring.push("aaaa");
    ring.push("bbbb");
    cr_assert_eq(ring.size(), 2u);
    ring.push("cccc"); // each line costs its bytes + 1: 15 > 10, the oldest goes
    cr_assert_eq(ring.size(), 2u);
    std::string all = ring.all();
    cr_assert_str_eq(all.c_str(), "bbbb\ncccc");
    ring.push("dd"); // 13 > 10: "bbbb" goes
    all = ring.all();
    cr_assert_str_eq(all.c_str(), "cccc\ndd");
    ring.push("e"); // 10: fits
    all = ring.all();
    cr_assert_str_eq(all.c_str(), "cccc\ndd\ne");
}

Test(line_ring, tail_order) {
    ls::logs::LineRing ring(1000);
    for (int i = 1; i <= 5; ++i) ring.push("line" + std::to_string(i));
    std::string t = ring.tail(2);
    cr_assert_str_eq(t.c_str(), "line4\nline5");
    t = ring.tail(1);
    cr_assert_str_eq(t.c_str(), "line5");
    t = ring.tail(0);
    cr_assert_str_eq(t.c_str(), "");
    t = ring.tail(100);
    cr_assert_str_eq(t.c_str(), "line1\nline2\nline3\nline4\nline5");
}

Test(line_ring, long_line_truncated_and_clear) {
    ls::logs::LineRing ring(8);
    ring.push("short");
    ring.push("0123456789abcdef");
    cr_assert_eq(ring.size(), 1u);
    std::string all = ring.all();
    cr_assert_str_eq(all.c_str(), "0123456"); // cut to the cap less its newline
    ring.clear();
    cr_assert_eq(ring.size(), 0u);
    all = ring.all();
    cr_assert_str_eq(all.c_str(), "");
    ring.push("again");
    all = ring.all();
    cr_assert_str_eq(all.c_str(), "again");
}

Test(line_ring, many_lines_stay_bounded) {
    ls::logs::LineRing ring(1024);
    for (int i = 0; i < 10000; ++i) ring.push("line number " + std::to_string(i));
    std::string all = ring.all();
    cr_assert_leq(all.size() - (ring.size() - 1), 1024u, "content bytes within the cap");
    std::string last = ring.tail(1);
    cr_assert_str_eq(last.c_str(), "line number 9999");
}

Test(line_ring, all_lines_terminates_every_line) {
    ls::logs::LineRing ring(100);
    ring.push("a");
    ring.push("");
    ring.push("b");
    std::string all = ring.all_lines();
    cr_assert_str_eq(all.c_str(), "a\n\nb\n");
    ring.clear();
    all = ring.all_lines();
    cr_assert_str_eq(all.c_str(), "");
}

// Regression (src/logs/line_ring.cc, tail): lines are joined with "if (!out.empty()) add '\n'", so
// leading empty lines vanish: tail() of ["", "", "x"] is "x", not "\n\nx".
Test(line_ring, tail_keeps_leading_empty_lines) {
    ls::logs::LineRing ring(100);
    ring.push("");
    ring.push("");
    ring.push("x");
    std::string t = ring.tail(3);
    cr_assert_str_eq(t.c_str(), "\n\nx");
}

// Regression (src/logs/line_ring.cc): the cap counts only line content, so empty lines cost nothing
// and the ring grows without bound. An upstream printing blank lines (ModelProcess pushes
// every line, empty ones included) makes the daemon's memory grow forever.
Test(line_ring, empty_lines_are_bounded_too) {
    ls::logs::LineRing ring(1024);
    for (int i = 0; i < 100000; ++i) ring.push("");
    cr_assert_leq(ring.size(), 1024u, "%zu empty lines kept under a 1024-byte cap", ring.size());
}

// ------------------------------------------------------------------ upstream URLs

namespace {
ls::proxy::UpstreamAddress parse_ok(const char* url) {
    auto r = ls::proxy::parse_upstream_url(url);
    cr_assert(r.ok(), "%s: %s", url, r.ok() ? "" : r.error().message.c_str());
    return r.value();
}

void parse_fails(const char* url) {
    auto r = ls::proxy::parse_upstream_url(url);
    cr_assert_not(r.ok(), "%s should be rejected", url);
    cr_assert_not(r.error().message.empty());
}
} // namespace

Test(upstream_address, localhost_maps_to_ipv4_loopback) {
    auto a = parse_ok("http://localhost:8080");
    cr_assert_eq(a.addr.ss_family, AF_INET);
    cr_assert_eq(a.addr_len, sizeof(sockaddr_in));
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.addr);
    cr_assert_eq(ntohs(v4->sin_port), 8080);
    cr_assert_eq(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_str_eq(a.host_header.c_str(), "localhost:8080");
    cr_assert_str_eq(a.base_path.c_str(), "");
    cr_assert_str_eq(a.url.c_str(), "http://localhost:8080");
    std::string key = a.key();
    cr_assert_str_eq(key.c_str(), "127.0.0.1|8080");
}

Test(upstream_address, ipv4_with_base_path) {
    auto a = parse_ok("http://127.0.0.1:5800/api/base//");
    cr_assert_eq(a.addr.ss_family, AF_INET);
    cr_assert_str_eq(a.base_path.c_str(), "/api/base");
    cr_assert_str_eq(a.host_header.c_str(), "127.0.0.1:5800");
    a = parse_ok("http://10.1.2.3:9/");
    cr_assert_str_eq(a.base_path.c_str(), "");
    std::string key = a.key();
    cr_assert_str_eq(key.c_str(), "10.1.2.3|9");
}

Test(upstream_address, default_port_80) {
    auto a = parse_ok("http://127.0.0.1");
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.addr);
    cr_assert_eq(ntohs(v4->sin_port), 80);
    cr_assert_str_eq(a.host_header.c_str(), "127.0.0.1");
}

Test(upstream_address, ipv6_literal) {
    auto a = parse_ok("http://[::1]:9000/v1/");
    cr_assert_eq(a.addr.ss_family, AF_INET6);
    cr_assert_eq(a.addr_len, sizeof(sockaddr_in6));
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    cr_assert_eq(ntohs(v6->sin6_port), 9000);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    cr_assert_str_eq(a.host_header.c_str(), "[::1]:9000");
    cr_assert_str_eq(a.base_path.c_str(), "/v1");
    std::string key = a.key();
    cr_assert_str_eq(key.c_str(), "::1|9000");

    a = parse_ok("http://[fe80::1]");
    v6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    cr_assert_eq(ntohs(v6->sin6_port), 80);
}

Test(upstream_address, errors) {
    parse_fails("ftp://127.0.0.1");
    parse_fails("127.0.0.1:8080");
    parse_fails("");
    parse_fails("http://");
    parse_fails("http://:8080");
    parse_fails("http://127.0.0.1:0");
    parse_fails("http://127.0.0.1:65536");
    parse_fails("http://127.0.0.1:99999");
    parse_fails("http://127.0.0.1:-1");
    parse_fails("http://127.0.0.1:abc");
    parse_fails("http://127.0.0.1:80x");
    parse_fails("http://127.0.0.1:");
    parse_fails("http://[::1");
    parse_fails("http://[::1]:");
    parse_fails("http://[]:80");
}

// Regression (src/proxy/upstream_address.cc): after "]" anything but ":PORT" is silently ignored,
// so a typo like "http://[::1]8080" connects to port 80.
Test(upstream_address, junk_after_ipv6_bracket_rejected) {
    parse_fails("http://[::1]8080");
    parse_fails("http://[::1]x:8080");
}

Test(upstream_address, scheme_message) {
    auto r = ls::proxy::parse_upstream_url("ftp://x");
    cr_assert_not(r.ok());
    cr_assert_str_eq(r.error().message.c_str(),
                     "unsupported proxy URL 'ftp://x' (http:// or https:// only)");
}

Test(upstream_address, https_default_port_and_server_name) {
    auto r = ls::proxy::parse_upstream_url("https://api.example.com/v1", false);
    cr_assert(r.ok());
    cr_assert(r->tls);
    cr_assert_eq(r->port, 443);
    cr_assert_str_eq(r->host.c_str(), "api.example.com");
    cr_assert_str_eq(r->lookup_name.c_str(), "api.example.com");
    cr_assert_str_eq(r->base_path.c_str(), "/v1");
    auto plain = ls::proxy::parse_upstream_url("http://127.0.0.1:9", false);
    cr_assert(plain.ok() && !plain->tls);
}

// ------------------------------------------------------------------ port allocator

namespace {
// A free port picked by the kernel (bound and released).
int ephemeral_port() {
    ls::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    return ntohs(a.sin_port);
}

// Binds and listens on `port` (127.0.0.1 or the wildcard); returns the socket.
ls::UniqueFd hold_port(int port, bool any) {
    ls::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return ls::UniqueFd();
    cr_assert_eq(listen(fd.get(), 1), 0);
    return fd;
}

// A listening socket on an ephemeral port whose successor is free too (retries a few times:
// other processes may grab ports meanwhile).
ls::UniqueFd hold_some_port(int& port, bool any) {
    for (int attempt = 0; attempt < 20; ++attempt) {
        port = ephemeral_port();
        if (port >= 65000) continue;
        ls::UniqueFd fd = hold_port(port, any);
        if (fd && ls::supervisor::PortAllocator::port_is_free(port + 1)) return fd;
    }
    cr_assert_fail("could not find a port to hold");
    return ls::UniqueFd();
}
} // namespace

Test(port_allocator, preferred_when_free) {
    const int port = ephemeral_port();
    ls::supervisor::PortAllocator alloc(port);
    cr_assert(ls::supervisor::PortAllocator::port_is_free(port));
    auto r = alloc.acquire(port);
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    cr_assert_eq(r.value(), port);
}

Test(port_allocator, port_held_by_a_listener_is_skipped) {
    for (bool any : {false, true}) {
        int port = 0;
        ls::UniqueFd held = hold_some_port(port, any);
        cr_assert_not(ls::supervisor::PortAllocator::port_is_free(port), "port %d held on %s", port,
                      any ? "0.0.0.0" : "127.0.0.1");
        ls::supervisor::PortAllocator alloc(port);
        auto r = alloc.acquire(port);
        cr_assert(r.ok());
        cr_assert_neq(r.value(), port);
        cr_assert_gt(r.value(), port);
        alloc.release(r.value());
    }
}

Test(port_allocator, held_ports_not_handed_out_twice_until_released) {
    int port = 0;
    ls::UniqueFd probe = hold_some_port(port, false);
    probe.reset(); // now free, and port + 1 was free a moment ago
    ls::supervisor::PortAllocator alloc(port);
    auto a = alloc.acquire(port);
    cr_assert(a.ok());
    cr_assert_eq(a.value(), port);
    auto b = alloc.acquire(port); // the allocator itself holds it now
    cr_assert(b.ok());
    cr_assert_neq(b.value(), port);
    alloc.release(port);
    auto c = alloc.acquire(port);
    cr_assert(c.ok());
    cr_assert_eq(c.value(), port);
}

Test(port_allocator, no_preference_starts_at_start_port) {
    int port = 0;
    ls::UniqueFd probe = hold_some_port(port, false);
    probe.reset();
    ls::supervisor::PortAllocator alloc(port);
    auto a = alloc.acquire(0);
    cr_assert(a.ok());
    cr_assert_eq(a.value(), port);
    auto b = alloc.acquire(-5);
    cr_assert(b.ok());
    cr_assert_gt(b.value(), port);
}

Test(port_allocator, out_of_range_start_fails) {
    ls::supervisor::PortAllocator alloc(70000);
    auto r = alloc.acquire(0);
    cr_assert_not(r.ok());
    cr_assert(r.error().message.find("no free port") != std::string::npos);
}

// llama-server binds without SO_REUSEADDR: a port with a TIME-WAIT connection on it must
// count as busy, or the model fails with "couldn't bind HTTP server socket".
Test(port_allocator, a_port_in_time_wait_is_busy) {
    ls::UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    cr_assert_eq(listen(listener.get(), 1), 0);
    socklen_t len = sizeof a;
    getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    ls::UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert_eq(connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ls::UniqueFd served(accept(listener.get(), nullptr, nullptr));
    cr_assert(served);
    served.reset(); // the server side closes first: its end goes to TIME-WAIT on `port`
    usleep(20 * 1000);
    client.reset();
    listener.reset();
    usleep(20 * 1000);
    cr_assert_not(ls::supervisor::PortAllocator::port_is_free(port),
                  "port %d has a TIME-WAIT connection", port);
    ls::supervisor::PortAllocator alloc(port);
    auto r = alloc.acquire(port);
    cr_assert(r.ok());
    cr_assert_neq(r.value(), port);
}

Test(port_allocator, a_port_an_upstream_could_not_bind_is_avoided) {
    int port = 0;
    ls::UniqueFd probe = hold_some_port(port, false);
    probe.reset();
    ls::supervisor::PortAllocator alloc(port);
    alloc.avoid(port);
    auto r = alloc.acquire(port);
    cr_assert(r.ok());
    cr_assert_neq(r.value(), port, "a port that just failed is not handed out again");
}

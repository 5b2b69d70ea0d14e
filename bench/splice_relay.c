/* splice_relay: the least a user-space TCP relay can do, as a baseline for bench/large_bodies.py.
 *
 *   splice_relay LISTEN_PORT UPSTREAM_PORT [PIPE_BYTES [copy]]
 *
 * Listens on 127.0.0.1:LISTEN_PORT and serves one connection at a time: connects to
 * 127.0.0.1:UPSTREAM_PORT and moves bytes both ways until both sides have finished, with
 * splice(2) through one pipe per direction (F_SETPIPE_SZ PIPE_BYTES, default 65536), poll(2)
 * driven, non-blocking. No HTTP parsing, no buffering policy, no timers: what is left is the
 * cost of the kernel's socket -> pipe -> socket path. With "copy" it moves the bytes with
 * recv/send through a PIPE_BYTES user-space buffer instead (the copy path's floor).
 * Prints "splice_relay: pipe N bytes" (the size the kernel granted) on stderr, then nothing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct dir {
    int src, dst;
    int pr, pw;  /* the pipe (splice mode) */
    char* buf;   /* the buffer (copy mode) */
    size_t off;  /* copy mode: first unsent byte in buf */
    size_t held; /* bytes in the pipe or buffer not yet sent */
    int eof;     /* src said EOF */
    int done;    /* dst shut down for writing */
};

static size_t g_cap;
static int g_copy;

static void die(const char* what) {
    perror(what);
    exit(1);
}

static void nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
}

/* Moves what it can without blocking. Returns -1 when the connection is broken. */
static int pump(struct dir* d) {
    for (;;) {
        int progress = 0;
        if (!d->eof && d->held < g_cap) {
            ssize_t n;
            if (g_copy) {
                if (d->held == 0) d->off = 0;
                size_t end = d->off + d->held;
                n = end < g_cap ? recv(d->src, d->buf + end, g_cap - end, 0) : -1;
                if (end >= g_cap) errno = EAGAIN;
            } else {
                n = splice(d->src, NULL, d->pw, NULL, g_cap - d->held,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            }
            if (n > 0) {
                d->held += (size_t)n;
                progress = 1;
            } else if (n == 0) {
                d->eof = 1;
                progress = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                return -1;
            }
        }
        if (d->held > 0) {
            ssize_t n = g_copy ? send(d->dst, d->buf + d->off, d->held, MSG_NOSIGNAL)
                               : splice(d->pr, NULL, d->dst, NULL, d->held,
                                        SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->held -= (size_t)n;
                d->off += (size_t)n;
                progress = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return -1;
            }
        }
        if (d->eof && d->held == 0 && !d->done) {
            shutdown(d->dst, SHUT_WR);
            d->done = 1;
        }
        if (!progress) return 0;
    }
}

static void setup_dir(struct dir* d, int src, int dst) {
    memset(d, 0, sizeof(*d));
    d->src = src;
    d->dst = dst;
    if (g_copy) {
        d->buf = malloc(g_cap);
        if (!d->buf) die("malloc");
        return;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) die("pipe2");
    d->pr = p[0];
    d->pw = p[1];
    if (fcntl(d->pw, F_SETPIPE_SZ, (int)g_cap) < 0) die("F_SETPIPE_SZ");
}

static void free_dir(struct dir* d) {
    if (g_copy) {
        free(d->buf);
    } else {
        close(d->pr);
        close(d->pw);
    }
}

static void serve(int c, int up_port) {
    int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)up_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (u < 0) die("socket");
    if (connect(u, (struct sockaddr*)&a, sizeof(a)) < 0) {
        perror("connect upstream");
        close(u);
        return;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    nonblock(c);
    nonblock(u);
    struct dir d[2];
    setup_dir(&d[0], c, u); /* request */
    setup_dir(&d[1], u, c); /* response */
    for (;;) {
        if (pump(&d[0]) < 0 || pump(&d[1]) < 0) break;
        if (d[0].done && d[1].done) break;
        /* Wait for the destination while bytes are held (the source may only be read
           again once they are out), else for the source. */
        struct pollfd p[2] = {{.fd = c}, {.fd = u}};
        for (int i = 0; i < 2; i++) {
            if (d[i].held > 0) {
                p[i == 0 ? 1 : 0].events |= POLLOUT;
            } else if (!d[i].eof) {
                p[i == 0 ? 0 : 1].events |= POLLIN;
            }
        }
        if (poll(p, 2, -1) < 0 && errno != EINTR) die("poll");
        if ((p[0].revents | p[1].revents) & (POLLERR | POLLNVAL)) break;
        /* POLLHUP alone: the reads see EOF on the next pump. */
    }
    free_dir(&d[0]);
    free_dir(&d[1]);
    close(u);
    close(c);
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: splice_relay LISTEN_PORT UPSTREAM_PORT [PIPE_BYTES [copy]]\n");
        return 2;
    }
    int port = atoi(argv[1]), up_port = atoi(argv[2]);
    g_cap = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 65536;
    g_copy = argc > 4 && strcmp(argv[4], "copy") == 0;
    signal(SIGPIPE, SIG_IGN);
    if (!g_copy) { /* report the size the kernel grants (rounded to pages, capped) */
        int p[2];
        if (pipe(p) < 0) die("pipe");
        int got = fcntl(p[1], F_SETPIPE_SZ, (int)g_cap);
        if (got < 0) die("F_SETPIPE_SZ");
        g_cap = (size_t)got;
        close(p[0]);
        close(p[1]);
    }
    fprintf(stderr, "splice_relay: %s %zu bytes\n", g_copy ? "buffer" : "pipe", g_cap);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (l < 0) die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr*)&a, sizeof(a)) < 0) die("bind");
    if (listen(l, 64) < 0) die("listen");
    for (;;) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die("accept");
        }
        serve(c, up_port);
    }
}

#!/usr/bin/env python3
"""A tiny upstream for the readiness-to-first-byte benchmark (stdlib only).

usage: ready_upstream.py PORT DELAY_SECONDS STAMP_FILE

Binds 127.0.0.1:PORT. GET /health answers 503 until DELAY_SECONDS have passed since the
process started, then 200. The moment of the first 200 /health answer is written to STAMP_FILE
as "first_200=<time.time()> ready_at=<start + delay>" (ready_at is when it became able to answer
200; first_200 is when somebody first asked and got it). POST /v1/chat/completions answers a
small JSON body at once; for the first POST, the moment its connection was accepted and the moment
its head was parsed go to STAMP_FILE.post as "post_at=<time.time()> accept_at=<time.time()>".
"""
import time

T0 = time.time()  # before the imports below: the delay counts from process start

import json
import sys
import threading

# A short GIL switch interval: the thread that answers the proxied request should not wait
# several milliseconds for the thread that just answered /health.
sys.setswitchinterval(0.0002)
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
DELAY = float(sys.argv[2])
STAMP = sys.argv[3]
READY_AT = T0 + DELAY

_lock = threading.Lock()
_stamped = False
_posted = False
_accepted = {}  # client address -> time.time() when its connection was accepted

REPLY = json.dumps({
    "id": "chatcmpl-ready",
    "object": "chat.completion",
    "created": int(T0),
    "model": "ready",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        global _stamped
        if self.path.split("?")[0] != "/health":
            self._send(404, b'{"error":"not found"}', "application/json")
            return
        now = time.time()
        if now < READY_AT:
            self._send(503, b'{"status":"loading model"}', "application/json")
            return
        first = False
        with _lock:
            if not _stamped:
                _stamped = True
                first = True
        self._send(200, b'{"status":"ok"}', "application/json")
        if first:
            # Written after the answer went out, so the file I/O cannot delay it.
            with open(STAMP + ".tmp", "w") as f:
                f.write("first_200=%.6f ready_at=%.6f\n" % (now, READY_AT))
            import os
            os.replace(STAMP + ".tmp", STAMP)

    def do_POST(self):
        global _posted
        now = time.time()
        with _lock:
            first = not _posted
            _posted = True
        if first:
            with open(STAMP + ".post", "w") as f:
                f.write("post_at=%.6f accept_at=%.6f\n" % (now, _accepted.get(self.client_address, 0.0)))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self._send(200, REPLY, "application/json")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def process_request(self, request, client_address):
        _accepted[client_address] = time.time()
        super().process_request(request, client_address)


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever(poll_interval=0.05)

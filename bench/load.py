#!/usr/bin/env python3
"""Sends N POST /v1/chat/completions requests over C keep-alive connections, one after another
per connection (connections are opened in turn, so N/C requests each). Exits 1 unless every
answer is 200.

usage: load.py PORT MODEL N C
"""
import http.client
import sys

port, model, n, c = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = ('{"model":"%s","messages":[{"role":"user","content":"hello"}],"stream":false}' % model).encode()
ok = bad = 0
per = [n // c + (1 if i < n % c else 0) for i in range(c)]
for count in per:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(count):
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            ok += 1
        else:
            bad += 1
    conn.close()
print("ok=%d bad=%d" % (ok, bad))
sys.exit(0 if bad == 0 else 1)

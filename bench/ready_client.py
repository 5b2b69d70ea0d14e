#!/usr/bin/env python3
"""Sends one POST /v1/chat/completions and prints when its first response byte arrived.

usage: ready_client.py PORT MODEL [TIMEOUT_SECONDS]
prints: "first_byte=<time.time()> sent=<time.time()> status=<code> bytes=<n>"
"""
import socket
import sys
import time

port = int(sys.argv[1])
model = sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0

body = ('{"model":"%s","messages":[{"role":"user","content":"hello"}],"stream":false}' % model).encode()
req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body

s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sent = time.time()
s.sendall(req)
first = s.recv(65536)
first_t = time.time()
data = first
while first:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
s.close()
status = 0
if data.startswith(b"HTTP/"):
    try:
        status = int(data[9:12])
    except ValueError:
        pass
print("first_byte=%.6f sent=%.6f status=%d bytes=%d" % (first_t if first else 0.0, sent, status, len(data)))

#!/usr/bin/env python3
"""Peers and TLS, end to end: a front daemon reaching a back daemon through `peers` (names,
body rewrite, keys, filters, streaming, /upstream, listing), a peer over HTTPS with a CA the
test makes (and one with a wrong certificate refused), a peer that is down or silent (clear
502/504 naming it, no hang), an https:// local upstream, and the daemon's own TLS listener with
a certificate reloaded on SIGHUP."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


class Certs:
    """A CA and server certificates for localhost/127.0.0.1 made with openssl for this run."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="llama-swap-tls-")
        self.ca_key, self.ca = self.path("ca.key"), self.path("ca.pem")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
                  "-out", self.ca, "-days", "2", "-subj", "/CN=llama-swap test CA")
        self.key, self.cert = self.issue("server", "DNS:localhost,IP:127.0.0.1")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)

    def issue(self, name, san):
        key, csr, cert, ext = (self.path(name + s) for s in (".key", ".csr", ".pem", ".ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % san)
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", "/CN=" + name)
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return key, cert

    def self_signed(self):
        key, cert = self.path("self.key"), self.path("self.pem")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                  "-days", "2", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        return key, cert

    def remove(self):
        shutil.rmtree(self.dir, True)


class EchoPeer:
    """A stand-in remote server (OpenRouter-like): records each request's line, headers and
    body, answers a chat completion naming the model it was sent; over TLS when given a
    certificate. `silent` never answers (a wedged peer)."""

    def __init__(self, cert=None, key=None, silent=False):
        self.requests = []
        self.silent = silent
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            if self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
            f = c.makefile("rb")
            while True:
                line = f.readline()
                if not line:
                    return
                headers = {}
                while True:
                    hl = f.readline().decode()
                    if hl in ("\r\n", "\n", ""):
                        break
                    k, v = hl.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                body = f.read(int(headers.get("content-length", "0")))
                self.requests.append((line.decode().strip(), headers, body))
                if self.silent:
                    time.sleep(3600)
                model = json.loads(body).get("model") if body else None
                out = json.dumps({"object": "chat.completion", "model": model,
                                  "choices": [{"message": {"content": "from peer"}}]}).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(out) + out)
        except (OSError, ValueError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.sock.close()


def back_config():
    return {"models": {m: {"cmd": h.fake_cmd(model=m, tokens=5, tps=50)} for m in ("m", "n")}}


class Peers(unittest.TestCase):
    def test_front_daemon_reaches_a_back_daemon(self):
        with h.Daemon(back_config()) as back:
            front_cfg = {
                "apiKeys": ["sk-front"],
                "models": {"local": {"cmd": h.fake_cmd(model="local")}},
                "peers": {"back": {"proxy": "http://127.0.0.1:%d" % back.port,
                                   "models": ["m", "n", "local"],
                                   "filters": {"setParams": {"max_tokens": 7}}}},
            }
            with h4.Daemon(front_cfg) as d:
                auth = {"Authorization": "Bearer sk-front"}
                r = d.request("POST", "/v1/chat/completions", h.chat_body("back/m"), headers=auth,
                              timeout=30)
                self.assertEqual(r.status, 200, r)
                self.assertEqual((r.json()["model"], r.json()["request_model"]), ("m", "m"),
                                 "the peer is sent its own name for the model")
                r = d.request("POST", "/v1/chat/completions", h.chat_body("n"), headers=auth,
                              timeout=30)
                self.assertEqual(r.json()["model"], "n", "a bare name one peer has")
                r = d.request("POST", "/v1/chat/completions", h.chat_body("local"), headers=auth,
                              timeout=30)
                self.assertEqual(r.json()["model"], "local", "local ids win over peers'")
                # Streaming through the peer: chunks arrive as the back daemon sends them.
                s = h.stream_request(d.port, "/v1/chat/completions",
                                     h.chat_body("back/m", stream=True), headers=auth)
                self.assertTrue(s.complete, s.error)
                self.assertGreaterEqual(len(s.data_lines()), 6)
                times = [t for t, _ in s.data_lines()]
                self.assertGreater(times[-1] - times[0], 0.04, "the stream came in one piece")
                # /upstream/<peer>/<model>/… reaches the peer's own paths.
                r = d.request("GET", "/upstream/back/m/v1/models", headers=auth, timeout=30)
                self.assertEqual(r.status, 200, r)
                ids = [m["id"] for m in d.request("GET", "/v1/models", headers=auth).json()["data"]]
                for fqn in ("back/m", "back/n", "back/local", "local"):
                    self.assertIn(fqn, ids)
                rec = [m for m in d.request("GET", "/v1/models", headers=auth).json()["data"]
                       if m["id"] == "back/m"][0]
                self.assertEqual(rec["meta"]["llamaswap"], {"type": "peer", "peerID": "back"})
                self.assertEqual(rec["name"], "back: m")

    def test_keys_headers_and_filters_reach_the_peer(self):
        peer = EchoPeer()
        try:
            cfg = {"apiKeys": ["sk-client"],
                   "peers": {"remote": {"proxy": "http://127.0.0.1:%d/api" % peer.port,
                                        "apiKey": "sk-peer",
                                        "models": ["vendor/model-x"],
                                        "filters": {"stripParams": "temperature",
                                                    "setParams": {"max_tokens": 9}}}}}
            with h4.Daemon(cfg) as d:
                body = h.chat_body("remote/vendor/model-x", temperature=0.3)
                r = d.request("POST", "/v1/chat/completions", body,
                              headers={"Authorization": "Bearer sk-client",
                                       "Host": "front.example"}, timeout=30)
                self.assertEqual(r.status, 200, r)
                line, headers, sent = peer.requests[-1]
                self.assertEqual(line, "POST /api/v1/chat/completions HTTP/1.1")
                self.assertEqual(headers["authorization"], "Bearer sk-peer")
                self.assertEqual(headers["x-api-key"], "sk-peer")
                self.assertNotIn("sk-client", json.dumps(headers), "the client's key leaked")
                self.assertEqual(headers["host"], "127.0.0.1:%d" % peer.port)
                doc = json.loads(sent)
                self.assertEqual(doc["model"], "vendor/model-x")
                self.assertNotIn("temperature", doc)
                self.assertEqual(doc["max_tokens"], 9)
        finally:
            peer.close()

    def test_peer_down_or_silent_fails_fast_and_clearly(self):
        silent = EchoPeer(silent=True)
        try:
            cfg = {"peers": {
                "gone": {"proxy": "http://127.0.0.1:%d" % h.free_port(), "models": ["a"]},
                "slow": {"proxy": "http://127.0.0.1:%d" % silent.port, "models": ["b"],
                         "timeouts": {"responseHeader": 1}}}}
            with h4.Daemon(cfg) as d:
                r = d.chat("gone/a", timeout=15)
                self.assertEqual(r.status, 502, r)
                self.assertIn("peer 'gone'", r.json()["error"]["message"])
                t0 = time.monotonic()
                r = d.chat("b", timeout=15)
                self.assertEqual(r.status, 504, r)
                self.assertIn("peer 'slow'", r.json()["error"]["message"])
                self.assertLess(time.monotonic() - t0, 10, "the peer's responseHeader bound")
                self.assertEqual(d.request("GET", "/health").status, 200)
        finally:
            silent.close()


_certs = None


class TlsDaemon(h.Daemon):
    fd_name = "https"  # a socket not named "http" serves TLS


class TlsDaemon4(h4.Daemon):
    fd_name = "https"


class Tls(unittest.TestCase):
    # The harness runs each test on its own (no class fixtures): one CA serves them all.
    def setUp(self):
        global _certs
        if not shutil.which("openssl"):
            self.skipTest("openssl(1) is not installed: cannot make certificates")
        if _certs is None:
            _certs = Certs()
        self.certs = _certs

    def test_peer_over_https_with_our_ca_and_a_wrong_certificate_refused(self):
        good = EchoPeer(self.certs.cert, self.certs.key)
        bad_key, bad_cert = self.certs.self_signed()
        bad = EchoPeer(bad_cert, bad_key)
        try:
            cfg = {"peers": {
                "secure": {"proxy": "https://localhost:%d" % good.port, "models": ["x"],
                           "tls": {"caFile": self.certs.ca}},
                "system": {"proxy": "https://localhost:%d" % good.port, "models": ["y"]},
                "wrong": {"proxy": "https://localhost:%d" % bad.port, "models": ["z"],
                          "tls": {"caFile": self.certs.ca}},
                "lax": {"proxy": "https://localhost:%d" % bad.port, "models": ["w"],
                        "tls": {"insecure": True}}}}
            with h4.Daemon(cfg) as d:
                r = d.chat("secure/x", timeout=30)
                self.assertEqual((r.status, r.json().get("model")), (200, "x"), r)
                for name in ("system/y", "wrong/z"):
                    r = d.chat(name, timeout=30)
                    self.assertEqual(r.status, 502, r)
                    self.assertEqual(r.json()["error"]["code"], "upstream_tls_failed")
                    self.assertIn("certificate verify failed", r.json()["error"]["message"])
                self.assertEqual(len(bad.requests), 0, "a request went to a peer not verified")
                r = d.chat("lax/w", timeout=30)
                self.assertEqual(r.status, 200, r)
        finally:
            good.close()
            bad.close()

    def test_local_model_with_an_https_upstream(self):
        """A model whose server speaks HTTPS (proxy: https://…): the health probe and the
        requests go over TLS, verified against the model's caFile."""
        server = EchoPeer(self.certs.cert, self.certs.key)
        try:
            cfg = {"models": {"secure": {
                "cmd": "sleep 600", "proxy": "https://localhost:%d" % server.port,
                "checkEndpoint": "/health", "tls": {"caFile": self.certs.ca}}}}
            with h4.Daemon(cfg) as d:
                r = d.chat("secure", timeout=30)
                self.assertEqual((r.status, r.json().get("model")), (200, "secure"), r)
                lines = [line for line, _, _ in server.requests]
                self.assertIn("GET /health HTTP/1.1", lines, "the probe went over TLS")
                self.assertIn("POST /v1/chat/completions HTTP/1.1", lines)
        finally:
            server.close()

    def test_https_model_whose_tls_cannot_work_is_reported_at_load(self):
        """A TLS setup that cannot work (here a caFile with no certificate in it; on a host
        without libssl.so.3 the same path) is logged when the config loads, before any
        request, and a request gets 502 model_start_failed."""
        garbage = self.certs.path("no-such-ca.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        cfg = {"models": {"secure": {"cmd": "sleep 600", "proxy": "https://localhost:9",
                                     "tls": {"caFile": garbage}}}}
        with h4.Daemon(cfg) as d:
            h.wait_until(lambda: "model secure: " in d.log(), 5, what="the load-time error")
            line = next(l for l in d.log().splitlines() if "model secure: " in l)
            self.assertIn("no-such-ca.pem", line)
            self.assertIn("starting it will fail", line)
            r = d.chat("secure", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertEqual(r.json()["error"]["code"], "model_start_failed", r)

    def test_tls_listener_and_an_https_peer_chain(self):
        """Two daemons: the back one serves HTTPS itself; the front one reaches it as a peer
        over TLS; a streamed answer crosses both."""
        back = TlsDaemon(back_config(), args=("--tls-cert-file", self.certs.cert,
                                             "--tls-key-file", self.certs.key),
                        wait_ready=False)
        with back:
            ctx = ssl.create_default_context(cafile=self.certs.ca)

            def health():
                try:
                    c = http.client.HTTPSConnection("localhost", back.port, timeout=2, context=ctx)
                    c.request("GET", "/health")
                    return c.getresponse().status == 200
                except OSError:
                    return False
            h.wait_until(health, 10, what="the TLS listener")
            cfg = {"peers": {"back": {"proxy": "https://localhost:%d" % back.port,
                                      "models": ["m"], "tls": {"caFile": self.certs.ca}}}}
            with h4.Daemon(cfg) as d:
                s = h.stream_request(d.port, "/v1/chat/completions",
                                     h.chat_body("back/m", stream=True))
                self.assertTrue(s.complete, s.error)
                self.assertEqual(s.data_lines()[-1][1], b"[DONE]")
                r = d.chat("back/m", timeout=30)
                self.assertEqual(r.json()["model"], "m")
            # Plain HTTP to the TLS port gets no answer (a TLS handshake is expected).
            c = http.client.HTTPConnection("127.0.0.1", back.port, timeout=5)
            with self.assertRaises((OSError, http.client.HTTPException)):
                c.request("GET", "/health")
                c.getresponse()

    def test_certificate_reloaded_on_sighup(self):
        key, cert = self.certs.issue("first", "DNS:localhost")
        live_key, live_cert = self.certs.path("live.key"), self.certs.path("live.pem")
        shutil.copy(key, live_key)
        shutil.copy(cert, live_cert)
        with TlsDaemon4(back_config(), args=("--tls-cert-file", live_cert,
                                            "--tls-key-file", live_key),
                       wait_ready=False) as d:
            ctx = ssl.create_default_context(cafile=self.certs.ca)

            def served_cn():
                with socket.create_connection(("127.0.0.1", d.port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            h.wait_until(lambda: _quiet(served_cn), 10, what="the TLS listener")
            self.assertEqual(served_cn(), "first")
            key2, cert2 = self.certs.issue("second", "DNS:localhost")
            shutil.copy(key2, live_key)
            shutil.copy(cert2, live_cert)
            d.proc.send_signal(1)  # SIGHUP
            h.wait_until(lambda: "TLS certificate reloaded" in d.log(), 10, what="the reload")
            self.assertEqual(served_cn(), "second")


def _quiet(fn):
    try:
        return fn()
    except (OSError, ssl.SSLError):
        return None


class Flags(unittest.TestCase):
    def test_cert_and_key_go_together(self):
        r = subprocess.run([h.LLAMA_SWAP, "--tls-cert-file", "/nonexistent.pem"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--tls-cert-file and --tls-key-file go together", r.stderr)


if __name__ == "__main__":
    try:
        h.main()
    finally:
        if _certs is not None:
            _certs.remove()

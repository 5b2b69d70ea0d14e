"""Shared by the bench/ scripts: free loopback ports, the processes a script starts (stopped by
pid at exit, never by name), and a process's CPU time."""
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    """A loopback port that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_libc = None


def cpu_ns(pid):
    """CPU time (user + system) of a whole process in ns, exited threads included: its
    process CPU clock (clock_getcpuclockid), where cpu_seconds has clock-tick resolution;
    falls back to cpu_seconds."""
    global _libc
    try:
        import ctypes
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        clk = ctypes.c_int()
        if _libc.clock_getcpuclockid(pid, ctypes.byref(clk)) == 0:
            return time.clock_gettime_ns(clk.value)
    except (OSError, AttributeError):
        pass
    return int(cpu_seconds(pid) * 1e9)


def wait_http(url, proc, what):
    """Until url answers 2xx (10 s at most) while proc lives; exits the script otherwise."""
    for _ in range(200):
        r = subprocess.run(["curl", "-sf", "-o", "/dev/null", "--max-time", "1", url])
        if r.returncode == 0:
            return
        if proc.poll() is not None:
            sys.exit("%s exited before %s answered" % (what, url))
        time.sleep(0.05)
    sys.exit("%s did not answer %s within 10 s" % (what, url))


NGINX_PROXY = """daemon off;
master_process off;
worker_processes 1;
error_log %(d)s/error.log warn;
pid %(d)s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(d)s/tmp/body;
    proxy_temp_path %(d)s/tmp/proxy;
    fastcgi_temp_path %(d)s/tmp/fastcgi;
    uwsgi_temp_path %(d)s/tmp/uwsgi;
    scgi_temp_path %(d)s/tmp/scgi;
    upstream up { server 127.0.0.1:%(up)d; keepalive %(keepalive)d; }
    server {
        listen 127.0.0.1:%(port)d;
%(server)s        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
%(location)s        }
    }
}
"""


def start_nginx_proxy(procs, nginx, work, up, log, keepalive, server="", location=""):
    """nginx as a reverse proxy to 127.0.0.1:up, as the benchmarks compare it: one worker,
    keep-alive upstream connections, response buffering off; `server` and `location` lines
    are added to those blocks. Returns (process, port) once it answers /health."""
    d = os.path.join(work, "nginx")
    os.makedirs(os.path.join(d, "tmp"))
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_PROXY % {"d": d, "up": up, "port": port, "keepalive": keepalive,
                               "server": server, "location": location})
    p = procs.start([nginx, "-e", os.path.join(d, "error.log"), "-c",
                     os.path.join(d, "nginx.conf"), "-p", d + "/"], log)
    wait_http("http://127.0.0.1:%d/health" % port, p, "nginx")
    return p, port


class Procs:
    """Processes started by a script, each in its own session; stop_all() at the end."""

    def __init__(self):
        self.procs = []

    def start(self, args, log, env=None):
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)

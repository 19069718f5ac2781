"""Shared HTTP plumbing for the sample services (standard library only).

- Config: what a service reads from its environment.
- BaseHandler: /healthz, /readyz, compact one-line access log on stdout, JSON/HTML replies.
- make_server / serve: a ThreadingHTTPServer that shuts down gracefully on SIGTERM/SIGINT:
  /readyz turns 503, after SHUTDOWN_DELAY seconds the listener stops accepting, in-flight
  requests finish (their threads are joined), and the process exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping, Optional

DEFAULT_PORTS = {"api": 8081, "web": 8080, "edge": 8000}


def _float(value: Optional[str], default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


@dataclass
class Config:
    service: str
    port: int
    version: str = "1"
    node: str = ""
    ready_delay: float = 0.0
    fail_healthz: bool = False
    api_url: str = "http://api:8081"
    shutdown_delay: float = 0.0
    host: str = ""  # bind address; "" = all interfaces
    container: str = field(default_factory=socket.gethostname)

    @classmethod
    def from_env(cls, service: str, env: Optional[Mapping[str, str]] = None) -> "Config":
        env = os.environ if env is None else env
        return cls(
            service=service,
            port=int(env.get("PORT") or DEFAULT_PORTS[service]),
            version=env.get("APP_VERSION") or "1",
            node=env.get("NODE_NAME", ""),
            ready_delay=_float(env.get("READY_DELAY"), 0.0),
            fail_healthz=env.get("FAIL_HEALTHZ", "") == "1",
            api_url=(env.get("API_URL") or "http://api:8081").rstrip("/"),
            shutdown_delay=_float(env.get("SHUTDOWN_DELAY"), 0.0),
            host=env.get("HOST", ""),
        )

    def whoami(self) -> dict:
        return {"service": self.service, "container": self.container, "node": self.node,
                "version": self.version}


class AppServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose request threads are joined on server_close()."""

    daemon_threads = False      # non-daemon + block_on_close: server_close() waits for in-flight
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, config: Config, handler):
        self.config = config
        self.started = time.monotonic()
        self.draining = threading.Event()
        super().__init__((config.host, config.port), handler)

    @property
    def ready(self) -> bool:
        return (not self.draining.is_set()
                and time.monotonic() - self.started >= self.config.ready_delay)


class BaseHandler(BaseHTTPRequestHandler):
    server: AppServer
    server_version = "sampleapp"
    sys_version = ""
    timeout = 30                # a silent client cannot hold a thread (and shutdown) forever
    routes: dict = {}           # path -> method name, filled by subclasses

    @property
    def config(self) -> Config:
        return self.server.config

    # --- dispatch ------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802 (http.server naming)
        self._t0 = time.monotonic()
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            if self.config.fail_healthz:
                return self.reply(500, "failing (FAIL_HEALTHZ=1)\n")
            return self.reply(200, "ok\n")
        if path == "/readyz":
            if self.server.ready:
                return self.reply(200, "ready\n")
            return self.reply(503, "not ready\n")
        name = self.routes.get(path)
        if name is None:
            return self.reply_json(404, {"error": "not found", "path": path})
        return getattr(self, name)()

    def do_HEAD(self):  # noqa: N802
        self._head = True
        self.do_GET()

    # --- replies -------------------------------------------------------------------------
    def reply(self, code: int, body, ctype: str = "text/plain; charset=utf-8"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not getattr(self, "_head", False):
            self.wfile.write(data)
        self._access_log(code, len(data))

    def reply_json(self, code: int, obj):
        self.reply(code, json.dumps(obj, separators=(",", ":")) + "\n", "application/json")

    # --- logging: one compact line per request on stdout ----------------------------------
    def log_request(self, code="-", size="-"):
        pass  # logged by _access_log once the body is written (with duration)

    def log_message(self, fmt, *args):  # errors from http.server itself (bad requests...)
        _log(f"{self.config.service} {self.client_address[0]} ! {fmt % args}")

    def _access_log(self, code: int, size: int):
        ms = (time.monotonic() - getattr(self, "_t0", time.monotonic())) * 1000
        _log(f"{self.config.service} {self.client_address[0]} {self.command} {self.path} "
             f"{code} {size}B {ms:.1f}ms")


_log_lock = threading.Lock()


def _log(line: str):
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with _log_lock:
        sys.stdout.write(f"{ts} {line}\n")
        sys.stdout.flush()


def make_server(config: Config, handler) -> AppServer:
    return AppServer(config, handler)


def shutdown(server: AppServer):
    """Graceful stop: not ready, optional drain delay, stop accepting, join in-flight, close."""
    server.draining.set()
    if server.config.shutdown_delay > 0:
        time.sleep(server.config.shutdown_delay)
    server.shutdown()        # serve_forever returns: no new connections are accepted
    server.server_close()    # closes the listener and joins the request threads


def serve(config: Config, handler) -> int:
    """Run until SIGTERM/SIGINT, then shut down gracefully; returns the exit code (0)."""
    server = make_server(config, handler)
    stop = threading.Event()

    def on_signal(signum, _frame):
        _log(f"{config.service} signal {signal.Signals(signum).name}: shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                            name="serve_forever", daemon=True)
    loop.start()
    host, port = server.server_address[:2]
    _log(f"{config.service} listening on {host or '0.0.0.0'}:{port} version={config.version} "
         f"node={config.node or '-'} container={config.container}")
    while not stop.wait(1.0):
        pass
    shutdown(server)
    _log(f"{config.service} stopped")
    return 0

"""The edge: the cluster's front door where the routing mesh is unavailable (Swarm dnsrr mode).

Proxies GET/HEAD to UPSTREAM (`host:port`, e.g. `web:8080`). The host is resolved on every request,
so with DNS round robin each request may reach another replica. A replica that refuses the
connection (stopping during a rolling update or a phoenix replacement), times out, or answers 502/503
is skipped and the next address is tried: requests are safe to retry because only GET and HEAD pass.
"""
from __future__ import annotations

import http.client
import os
import random
import socket
import sys
import time

from .common import BaseHandler, Config, serve

ATTEMPTS = 3
CONNECT_TIMEOUT = 1.0
TIMEOUT = 5.0
RETRY_STATUS = {502, 503}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authenticate", "proxy-authorization"}


def upstream_addresses(upstream: str) -> list[tuple[str, int]]:
    host, _, port = upstream.rpartition(":")
    infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][:2] for info in infos))
    random.shuffle(addresses)
    return addresses


class EdgeHandler(BaseHandler):
    def do_GET(self):  # noqa: N802
        if self.path.split("?", 1)[0] in ("/healthz", "/readyz"):
            return super().do_GET()
        self._t0 = time.monotonic()
        self.proxy()

    def proxy(self):
        upstream = os.environ.get("UPSTREAM", "web:8080")
        try:
            addresses = upstream_addresses(upstream)
        except (OSError, ValueError) as err:
            return self.reply_json(502, {"error": f"edge: cannot resolve {upstream}: {err}"})
        last_error = "no address"
        candidates = (addresses * ATTEMPTS)[:ATTEMPTS]
        for attempt, (host, port) in enumerate(candidates, 1):
            # A short connect timeout: a replica on a lost node is skipped in a second, not five.
            conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
            try:
                conn.connect()
                conn.sock.settimeout(TIMEOUT)
                conn.request(self.command, self.path, headers={"Host": self.headers.get("Host", upstream),
                                                               "X-Forwarded-For": self.client_address[0]})
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as err:
                last_error = f"{host}:{port}: {err}"
                continue
            finally:
                conn.close()
            if response.status in RETRY_STATUS and attempt < len(candidates):
                last_error = f"{host}:{port}: HTTP {response.status}"
                continue
            return self.relay(response, body)
        self.reply_json(502, {"error": f"edge: no healthy {upstream} answered: {last_error}"})

    def relay(self, response: http.client.HTTPResponse, body: bytes):
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Edge", self.config.container)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._access_log(response.status, len(body))


def main(env=None) -> int:
    return serve(Config.from_env("edge", env), EdgeHandler)


if __name__ == "__main__":
    sys.exit(main())

"""Health probe for images without curl/wget.

    python3 -m sampleapp.probe PORT PATH

Exits 0 when http://127.0.0.1:PORT/PATH answers HTTP 200 within 2 s, else 1.
PORT may be "auto": $PORT when set, else the first of 8080 (web) and 8081 (api) that
accepts a connection (so one image-level HEALTHCHECK fits both services).
"""

from __future__ import annotations

import http.client
import os
import sys

TIMEOUT = 2.0


def check(port: int, path: str, host: str = "127.0.0.1", timeout: float = TIMEOUT) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python3 -m sampleapp.probe PORT|auto PATH", file=sys.stderr)
        return 2
    port_arg, path = argv
    if not path.startswith("/"):
        path = "/" + path
    if port_arg == "auto":
        ports = [int(os.environ["PORT"])] if os.environ.get("PORT") else [8080, 8081]
    else:
        ports = [int(port_arg)]
    for port in ports:
        try:
            return 0 if check(port, path) else 1
        except ConnectionRefusedError:
            continue  # nothing on this port: try the next one
        except OSError:
            return 1  # timeout, reset...
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Unit tests of the sample microservices (images/app/sampleapp): no Docker needed.

The api and web servers run in threads of this process on free ports; one test runs
`python3 -m sampleapp.api` as a subprocess to check SIGTERM handling.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "images" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from sampleapp import api, probe, web  # noqa: E402
from sampleapp.common import Config, make_server, shutdown  # noqa: E402


def start(config: Config, handler):
    server = make_server(config, handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def url(server, path):
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def get(u, timeout=3):
    """(status, body text, content-type) also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(u, timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cfg(service, **kw):
    base = dict(service=service, port=0, host="127.0.0.1", version="7", node="node-a", container="c-" + service)
    base.update(kw)
    return Config(**base)


@pytest.fixture
def servers():
    started = []

    def _start(config, handler):
        s = start(config, handler)
        started.append(s)
        return s

    yield _start
    for s in started:
        s.shutdown()
        s.server_close()


@pytest.fixture
def api_server(servers):
    return servers(cfg("api"), api.ApiHandler)


def test_config_from_env_defaults_and_values():
    c = Config.from_env("api", {})
    assert (c.port, c.version, c.node, c.ready_delay, c.fail_healthz) == (8081, "1", "", 0.0, False)
    w = Config.from_env("web", {})
    assert (w.port, w.api_url) == (8080, "http://api:8081")
    w = Config.from_env("web", {"PORT": "9000", "APP_VERSION": "2", "NODE_NAME": "n1", "READY_DELAY": "1.5",
                                "FAIL_HEALTHZ": "1", "API_URL": "http://x:1/"})
    assert (w.port, w.version, w.node, w.ready_delay, w.fail_healthz, w.api_url) == \
        (9000, "2", "n1", 1.5, True, "http://x:1")
    assert Config.from_env("api", {"READY_DELAY": "junk"}).ready_delay == 0.0


def test_api_endpoints(api_server):
    code, body, ctype = get(url(api_server, "/api/whoami"))
    assert code == 200 and ctype == "application/json"
    assert json.loads(body) == {"service": "api", "container": "c-api", "node": "node-a", "version": "7"}
    assert get(url(api_server, "/healthz"))[:2] == (200, "ok\n")
    assert get(url(api_server, "/readyz"))[:2] == (200, "ready\n")
    assert get(url(api_server, "/nope"))[0] == 404
    assert get(url(api_server, "/api/whoami?delay=x"))[0] == 400


def test_fail_healthz(servers):
    s = servers(cfg("api", fail_healthz=True), api.ApiHandler)
    assert get(url(s, "/healthz"))[0] == 500
    assert get(url(s, "/readyz"))[0] == 200
    assert get(url(s, "/api/whoami"))[0] == 200


def test_ready_delay(servers):
    s = servers(cfg("web", ready_delay=5, api_url="http://127.0.0.1:9"), web.WebHandler)
    assert get(url(s, "/readyz"))[:2] == (503, "not ready\n")
    assert get(url(s, "/healthz"))[0] == 200  # alive while not ready
    s.started -= 5  # as if READY_DELAY had passed
    assert get(url(s, "/readyz"))[0] == 200


def test_web_calls_api(servers, api_server):
    w = servers(cfg("web", api_url=url(api_server, "")), web.WebHandler)
    code, body, _ = get(url(w, "/whoami.json"))
    assert code == 200
    data = json.loads(body)
    assert data["web"] == {"service": "web", "container": "c-web", "node": "node-a", "version": "7"}
    assert data["api"]["service"] == "api" and data["api"]["container"] == "c-api"
    code, page, ctype = get(url(w, "/"))
    assert code == 200 and ctype.startswith("text/html")
    assert "c-web" in page and "c-api" in page and "node-a" in page
    assert get(url(w, "/readyz"))[0] == 200 and get(url(w, "/healthz"))[0] == 200


def test_web_502_when_api_down(servers):
    w = servers(cfg("web", api_url=f"http://127.0.0.1:{free_port()}"), web.WebHandler)
    code, body, _ = get(url(w, "/whoami.json"))
    assert code == 502
    data = json.loads(body)
    assert "error" in data and "/api/whoami" in data["error"]
    code, page, _ = get(url(w, "/"))
    assert code == 502 and "error" in page
    assert get(url(w, "/readyz"))[0] == 200  # web readiness does not depend on the api


def test_probe(servers, monkeypatch):
    ok = servers(cfg("api"), api.ApiHandler)
    monkeypatch.setenv("PORT", str(ok.server_address[1]))
    assert probe.main(["auto", "/healthz"]) == 0  # "auto" = $PORT when set
    bad = servers(cfg("api", fail_healthz=True), api.ApiHandler)
    assert probe.main([str(ok.server_address[1]), "/healthz"]) == 0
    assert probe.main([str(ok.server_address[1]), "readyz"]) == 0
    assert probe.main([str(bad.server_address[1]), "/healthz"]) == 1
    assert probe.main([str(free_port()), "/healthz"]) == 1
    assert probe.main(["1"]) == 2


def test_graceful_shutdown_finishes_in_flight(servers):
    s = servers(cfg("api"), api.ApiHandler)
    result = {}

    def slow():
        result["r"] = get(url(s, "/api/whoami?delay=0.2"))

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.1)  # the request is in flight
    t0 = time.monotonic()
    shutdown(s)  # returns once in-flight requests are done
    assert time.monotonic() - t0 < 2
    t.join(2)
    assert result.get("r", (None,))[0] == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(url(s, "/healthz"), timeout=1)


def test_sigterm_subprocess_exits_0_after_in_flight():
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", PYTHONPATH=str(APP_DIR), NODE_NAME="n9")
    p = subprocess.Popen([sys.executable, "-m", "sampleapp.api"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "api did not start"
                time.sleep(0.02)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=get(f"http://127.0.0.1:{port}/api/whoami?delay=0.2")))
        t.start()
        time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=5)
        t.join(2)
        assert p.returncode == 0, out
        assert result["r"][0] == 200 and json.loads(result["r"][1])["node"] == "n9"
        lines = out.splitlines()
        assert any("GET /api/whoami?delay=0.2 200" in ln for ln in lines), out  # one line per request
        assert any("SIGTERM" in ln for ln in lines), out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_edge_proxies_to_the_upstream_and_answers_its_own_health(servers, monkeypatch):
    from sampleapp import edge
    a = servers(cfg("api"), api.ApiHandler)
    monkeypatch.setenv("UPSTREAM", f"127.0.0.1:{a.server_address[1]}")
    e = servers(cfg("edge", container="c-edge"), edge.EdgeHandler)
    status, body, _ = get(url(e, "/api/whoami"))
    assert status == 200 and json.loads(body)["container"] == "c-api"
    assert get(url(e, "/healthz"))[:2] == (200, "ok\n")


def test_edge_answers_502_naming_the_upstream_when_no_replica_answers(servers, monkeypatch):
    from sampleapp import edge
    monkeypatch.setenv("UPSTREAM", f"127.0.0.1:{free_port()}")
    e = servers(cfg("edge"), edge.EdgeHandler)
    status, body, _ = get(url(e, "/"))
    assert status == 502 and "no healthy 127.0.0.1:" in json.loads(body)["error"]


def test_edge_skips_a_replica_that_refuses_the_connection(servers, monkeypatch):
    from sampleapp import edge
    live = servers(cfg("api"), api.ApiHandler)
    dead = ("127.0.0.1", free_port())  # a replica that just stopped: nothing listens any more
    monkeypatch.setattr(edge, "upstream_addresses", lambda _: [dead, ("127.0.0.1", live.server_address[1])])
    e = servers(cfg("edge"), edge.EdgeHandler)
    status, body, _ = get(url(e, "/api/whoami"))
    assert status == 200 and json.loads(body)["service"] == "api"


def test_web_asks_the_api_again_when_no_answer_comes_but_not_after_an_http_error(api_server, monkeypatch):
    opened = []
    real = web.urllib.request.urlopen

    def first_connection_dies(u, timeout):
        opened.append(u)
        if len(opened) == 1:  # a container just killed: nothing answers on this connection
            raise web.urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
        return real(u, timeout=timeout)

    monkeypatch.setattr(web.urllib.request, "urlopen", first_connection_dies)
    assert web.call_api(url(api_server, ""))["service"] == "api"
    assert len(opened) == 2
    opened.clear()
    with pytest.raises(RuntimeError, match=r"HTTP 404"):
        web.call_api(url(api_server, "/nothing-here"))
    assert len(opened) == 2, "an answer, even an error, is not asked again"
    with pytest.raises(RuntimeError, match=r"\(3 attempts\)"):
        web.call_api(f"http://127.0.0.1:{free_port()}")

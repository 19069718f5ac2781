"""The cluster entry's retry policy, on the Traefik the kubeadm add-ons run (scripts/k8s-toolchain.sh)
with the arguments and dynamic configuration of the add-ons file itself
(components/orchestrators/scripts/kubeadm-addons.yaml).

A pod killed with GETs in flight (Traefik then answers 502 itself: the request had been sent), a pod
answering 502 (web when api is unreachable) and a listed pod that refuses connections (killed, not yet
removed from the endpoints) cost no request: each is asked again of another pod. A POST in flight on
a killed pod is not sent twice.

The pods are processes on 127.0.0.1 behind Traefik's file provider instead of its Ingress provider:
discovery differs, routing and retries are the same code.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from components.orchestrators.kubeadm import ADDONS
from tests.k8s import apiserver

reason = apiserver.missing_reason(needed=("traefik",))
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

PORTS = range(18200, 18260)
HOLD_S = 20
"""How long a `hold` pod keeps a request before answering (it is killed well before)."""

POD = r'''
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

name, mode, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Pod(BaseHTTPRequestHandler):
    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print(f"{self.command} {self.path}", flush=True)
        if mode == "hold":
            time.sleep(float(sys.argv[4]))
        code = 502 if mode == "502" else 200
        body = name.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Pod).serve_forever()
'''


def free_ports(count: int) -> list[int]:
    found = []
    for port in PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is free
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"fewer than {count} free ports in {PORTS.start}-{PORTS.stop - 1} on 127.0.0.1")


def addons(kind: str, name: str) -> dict:
    return next(d for d in yaml.safe_load_all(ADDONS) if d and d["kind"] == kind and d["metadata"]["name"] == name)


class Entry:
    """Traefik with the add-ons' arguments in front of `pods`, each a process answering per its mode:
    ok, 502, hold (keeps the request HOLD_S) or refuse (nothing listens on its port)."""

    def __init__(self, workdir: Path, modes: dict[str, str]):
        ports = iter(free_ports(len(modes) + 3))
        self.dir, self.pods, self.procs = workdir, {}, []
        self.pod_ports = {name: next(ports) for name in modes}
        self.port, ping, probe = next(ports), next(ports), next(ports)
        for name, mode in [*modes.items(), ("probe", "ok")]:
            if mode != "refuse":
                self.pods[name] = self._spawn(name, sys.executable, "-c", POD, name, mode,
                                              str(probe if name == "probe" else self.pod_ports[name]), str(HOLD_S))
        # The app's router, and one of the test's own whose answer tells that the file was loaded.
        dynamic = yaml.safe_load(addons("ConfigMap", "traefik-dynamic")["data"]["dynamic.yaml"])
        dynamic["http"]["routers"] = {
            "app": {"rule": "PathPrefix(`/`)", "service": "app", "entryPoints": ["web"]},
            "probe": {"rule": "Path(`/probe`)", "service": "probe", "entryPoints": ["web"], "priority": 1000}}
        dynamic["http"]["services"] = {
            "app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{p}"} for p in self.pod_ports.values()]}},
            "probe": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{probe}"}]}}}
        (workdir / "dynamic.yaml").write_text(yaml.safe_dump(dynamic))
        args = addons("DaemonSet", "traefik")["spec"]["template"]["spec"]["containers"][0]["args"]
        argv = [apiserver.find("traefik")]
        for arg in args:
            if arg.startswith("--providers.kubernetesingress"):
                continue
            if arg.startswith("--providers.file.filename="):
                arg = f"--providers.file.filename={workdir / 'dynamic.yaml'}"
            argv.append(arg.replace(":@ENTRY_PORT@", f"127.0.0.1:{self.port}")
                        .replace("--entryPoints.ping.address=:9000", f"--entryPoints.ping.address=127.0.0.1:{ping}"))
        assert any(a.startswith("--entryPoints.web.http.middlewares=") for a in argv), argv
        traefik = self._spawn("traefik", *argv)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and traefik.poll() is None:
            try:
                if self.request("GET", "/probe") == (200, "probe"):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"traefik does not route:\n{(workdir / 'traefik.log').read_text()[-2000:]}")

    def _spawn(self, name: str, *argv: str) -> subprocess.Popen:
        with open(self.dir / f"{name}.log", "w") as log:
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        return self.procs[-1]

    def request(self, method: str, path: str = "/whoami.json") -> tuple[int, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=b"{}" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=HOLD_S + 10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def received(self, name: str) -> int:
        return len((self.dir / f"{name}.log").read_text().splitlines())

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def entry(tmp_path):
    made: list[Entry] = []
    yield lambda modes: made.append(Entry(tmp_path, modes)) or made[-1]
    for e in made:
        e.stop()


def in_flight_then_killed(entry: Entry, method: str, count: int) -> list[tuple[int, str]]:
    """`count` concurrent requests; once the `hold` pod has one, it is SIGKILLed. The answers."""
    answers: list[tuple[int, str]] = []
    threads = [threading.Thread(target=lambda: answers.append(entry.request(method))) for _ in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while entry.received("hold") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert entry.received("hold") > 0, "no request reached the hold pod"
    entry.pods["hold"].kill()
    for t in threads:
        t.join(HOLD_S + 15)
    return answers


def test_gets_in_flight_on_a_killed_pod_are_answered_by_another(entry):
    e = entry({"hold": "hold", "a": "ok", "b": "ok"})
    answers = in_flight_then_killed(e, "GET", 6)
    assert len(answers) == 6 and all(code == 200 and body in ("a", "b") for code, body in answers), answers


@pytest.mark.parametrize("mode", ["502", "refuse"])
def test_gets_pass_over_a_pod_that_answers_502_or_refuses(entry, mode):
    e = entry({"bad": mode, "a": "ok", "b": "ok"})
    answers = [e.request("GET") for _ in range(9)]
    assert answers and all(code == 200 and body in ("a", "b") for code, body in answers), answers
    if mode == "502":
        assert e.received("bad") > 0, "the 502 pod was never asked: nothing was retried"


def test_a_post_in_flight_on_a_killed_pod_is_not_sent_twice(entry):
    e = entry({"hold": "hold", "a": "ok"})
    answers = in_flight_then_killed(e, "POST", 2)
    assert sorted(code for code, _ in answers) == [200, 502], answers
    assert e.received("a") == 1, "the POST in flight on the killed pod was sent to another one"

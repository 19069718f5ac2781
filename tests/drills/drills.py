"""Fault drills on a live cluster (Swarm or Kubernetes), under a steady request loop against the entry URL.

Each drill injects one fault, measures the requests sent and failed meanwhile and the seconds until
the service is back at its full healthy replica count (Swarm counts a task `running` only once its
health check passed, Kubernetes a pod once it is Ready), and returns one record:

  kill-task       one web container killed on its node (`docker kill`; Kubernetes: `ctr task kill`,
                  the kubelet restarts it)
  stop-worker     `docker stop` of a worker node container (all its tasks lost)
  rolling-update  web rolled to a new APP_VERSION (start-first, one at a time)
  failed-update   web rolled to a version whose /healthz fails (FAIL_HEALTHZ=1): automatic rollback
                  (Swarm's update policy; Kubernetes: the rollback controller, after the progress deadline)
  phoenix         the phoenix controller replaces containers for several intervals (phoenix_runs.py)

The drills read the cluster through the target (scripts/swarm_state.Target, scripts/k8s_state.KubeTarget:
the same state shape) and inject faults through its primitives (kill, update_env); everything else is
shared. Used by tests/drills/test_drills.py (pytest -m engine) and scripts/bench.py. Traffic goes only
to the cluster's loopback entry URL; everything else is `docker exec` on the cluster's own node
containers or the cluster's API.
"""
from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

from scripts.swarm_state import ROOT, Target, docker

APP_SERVICES = ("web", "api")
BUSY = ("updating", "rollback_started", "stalled")
"""Rollout states in which a service is not at full strength (stalled: Kubernetes' failed rollout)."""
RESULTS = ROOT / "build" / "drills.json"


# --- the request loop ------------------------------------------------------------------------------
class Load:
    """Open-loop GETs at `rate` per second to a loopback URL, in threads; stops by itself."""

    def __init__(self, url: str, rate: float = 20.0, max_seconds: float = 240.0, timeout: float = 15.0,
                 path: str = "/whoami.json"):
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"drill traffic goes to loopback only, not {parts.hostname}")
        self.host, self.port, self.path = "127.0.0.1", parts.port or 80, path
        self.rate, self.max_seconds, self.timeout = rate, max_seconds, timeout
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.sent = self.failed = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.error_kinds: Counter = Counter()
        self.versions: Counter = Counter()
        # A thread for every request that may be in flight (each may wait out its timeout), so that
        # requests leave on schedule however slow the answers (open loop).
        self.pool = ThreadPoolExecutor(max_workers=int(rate * timeout) + 16, thread_name_prefix="load")
        self.thread = threading.Thread(target=self._run, name="load", daemon=True)

    def start(self) -> "Load":
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def _run(self):
        i = 0
        while not self.stop_event.is_set() and time.monotonic() - self.t0 < self.max_seconds:
            due = self.t0 + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
                continue
            with self.lock:
                self.sent += 1
            self.pool.submit(self._one)
            i += 1

    def _one(self):
        t = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200
            version = json.loads(body)["web"]["version"] if ok else None
            error = None if ok else f"HTTP {response.status}: {body[:160]!r}"
            # The entry's own error, or web's report that its call to api failed (a JSON body).
            kind = None if ok else f"HTTP {response.status}" + (" from web (api call)" if body.startswith(b"{") else "")
        except Exception as err:  # noqa: BLE001 - every failure counts
            ok, version, error, kind = False, None, f"{type(err).__name__}: {err}", type(err).__name__
        finally:
            conn.close()
        with self.lock:
            self.latencies.append(time.monotonic() - t)
            if ok:
                self.versions[version] += 1
            else:
                self.failed += 1
                self.error_kinds[kind] += 1
                if len(self.errors) < 10:
                    self.errors.append(f"+{t - self.t0:.1f}s {error}")

    def stop(self) -> dict:
        self.stop_event.set()
        self.thread.join()
        self.pool.shutdown(wait=True)
        lat = sorted(self.latencies) or [0.0]
        return {"requests": self.sent, "failed": self.failed,
                "success_rate": round(1 - self.failed / self.sent, 5) if self.sent else None,
                "latency_p50_ms": round(statistics.median(lat) * 1000, 1),
                "latency_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
                "latency_max_ms": round(lat[-1] * 1000, 1),
                "versions": dict(self.versions), "errors": self.errors, "error_kinds": dict(self.error_kinds)}


class NoLoad:
    """Stand-in where the cluster has no entry URL (the bare-docker baseline)."""

    def start(self):
        return self

    def stop(self) -> dict:
        return {"requests": None, "failed": None, "success_rate": None}


# --- watching the cluster --------------------------------------------------------------------------
def running(service: dict) -> list[dict]:
    return [t for t in service["tasks"] if t["state"] == "running" and t["desired"] == "running"]


def at_full(state: dict, services=APP_SERVICES) -> bool:
    for name in services:
        s = state["services"].get(name)
        if s is None or s["update"] in BUSY or len(running(s)) < s["desired"]:
            return False
    return True


@dataclass
class Watch:
    """Polls the manager until a condition holds; records the lowest healthy count seen meanwhile."""

    target: Target
    services: tuple = APP_SERVICES
    poll: float = 0.2
    lowest: dict = field(default_factory=dict)

    def until(self, condition: Callable[[dict], bool], timeout: float, t0: Optional[float] = None) -> tuple[float, dict]:
        t0 = time.monotonic() if t0 is None else t0
        while True:
            try:
                state = self.target.state()
            except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired):
                state = None  # a manager busy electing / restarting: try again
            if state:
                for name in self.services:
                    s = state["services"].get(name)
                    if s:
                        self.lowest[name] = min(self.lowest.get(name, 10**6), len(running(s)))
                if condition(state):
                    return time.monotonic() - t0, state
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"not back within {timeout:.0f} s: {summary(state) if state else 'no state'}")
            time.sleep(self.poll)


def epoch(timestamp: str) -> float:
    """Epoch seconds of an Engine API timestamp (RFC 3339 with nanoseconds)."""
    from datetime import datetime, timezone
    main, _, frac = timestamp.rstrip("Z").partition(".")
    return (datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
            + (float("0." + frac[:9]) if frac else 0.0))


def healthy_again_s(state: dict, services, before: set, fault_at: float) -> Optional[float]:
    """Seconds from the fault to the moment Swarm saw the last new task running (healthy), read from
    the tasks' own status timestamps: exact, whatever the polling interval."""
    new = [t for n in services for t in running(state["services"][n]) if t["id"] not in before and t.get("since")]
    return max(epoch(t["since"]) for t in new) - fault_at if new else None


def summary(state: dict) -> str:
    return ", ".join(f"{k} {len(running(v))}/{v['desired']}{' ' + v['update'] if v['update'] else ''}"
                     for k, v in sorted(state["services"].items()))


def entry_answers(url: str, path: str = "/whoami.json", timeout: float = 5.0) -> bool:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"drill traffic goes to loopback only, not {parts.hostname}")
    conn = http.client.HTTPConnection("127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_ready(target: Target, timeout: float = 300) -> float:
    """Seconds until every service runs all its replicas (the global edge too) and the entry URL
    answers 200 three times in a row: `pulumi up` may return before a global service runs."""
    t0 = time.monotonic()
    streak = 0
    while True:
        try:
            state = target.state()
            full = at_full(state, tuple(state["services"]))
        except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired):
            full = False
        streak = streak + 1 if full and (not target.app_url or entry_answers(target.app_url)) else 0
        if streak >= 3:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{target.stack}: not serving within {timeout:.0f} s")
        time.sleep(0.3)


def load_for(target: Target, rate: float, wait: bool = True, max_seconds: float = 240.0) -> Load | NoLoad:
    if not target.app_url:
        return NoLoad()
    if wait:
        wait_ready(target, 120)  # a drill measures its fault, not a cluster that is still starting
    return Load(target.app_url, rate, max_seconds=max_seconds)


def record(drill: str, target: Target, load: dict, recovery_s: Optional[float], **extra) -> dict:
    rec = {"drill": drill, "cluster": f"{target.source}:{target.stack}", "orchestrator": target.orchestrator, **load,
           "recovery_s": None if recovery_s is None else round(recovery_s, 2), **extra}
    return rec


def line(rec: dict) -> str:
    req = "-" if rec.get("requests") is None else f"{rec['requests']} req, {rec['failed']} failed"
    rec_s = "-" if rec.get("recovery_s") is None else f"{rec['recovery_s']:.1f} s"
    extra = {k: v for k, v in rec.items() if k in ("replaced", "rounds", "node_down_s", "outcome", "lowest")}
    return f"{rec['drill']:<15} {rec['cluster']:<22} {req:<24} back at full: {rec_s:<8} {json.dumps(extra) if extra else ''}"


# --- the drills ------------------------------------------------------------------------------------
def kill_task(target: Target, service: str = "web", rate: float = 20.0, services=APP_SERVICES) -> dict:
    state = target.state()
    tasks = running(state["services"][service])
    managers = {n["hostname"] for n in state["nodes"] if n["role"] == "manager"}
    # A worker's task, one never restarted (the kubelet backs off restarts of a crashing container).
    victim = sorted(tasks, key=lambda t: (t["node"] in managers, t.get("restarts", 0), t["created"]))[0]
    before = {t["id"] for n in services for t in running(state["services"][n])}
    watch = Watch(target, services)
    load = load_for(target, rate).start()
    time.sleep(2)
    t0, wall = time.monotonic(), time.time()
    target.kill(victim)

    def back(st):
        s = st["services"][service]
        return at_full(st, services) and victim["id"] not in {t["id"] for t in running(s)}
    polled, st = watch.until(back, 60, t0)
    exact = healthy_again_s(st, services, before, wall)
    time.sleep(2)
    return record("kill-task", target, load.stop(), exact if exact is not None else polled, polled_s=round(polled, 2),
                  service=service, node=victim["node"], lowest=watch.lowest)


def stop_worker(target: Target, rate: float = 20.0, services=APP_SERVICES, restart: bool = True) -> dict:
    state = target.state()
    workers = [n["hostname"] for n in state["nodes"] if n["role"] == "worker" and n["state"] == "ready"]
    load_of = Counter(t["node"] for name in services for t in running(state["services"][name]))
    node = max(workers, key=lambda w: (load_of[w], w))
    lost = load_of[node]
    before = {t["id"] for n in services for t in running(state["services"][n])}
    watch = Watch(target, services)
    load = load_for(target, rate).start()
    time.sleep(2)
    t0, wall = time.monotonic(), time.time()
    stopper = threading.Thread(target=docker, args=("stop", node), kwargs={"timeout": 60, "check": False})
    stopper.start()
    down: dict = {}

    def back(st):
        if "at" not in down and any(n["hostname"] == node and n["state"] == "down" for n in st["nodes"]):
            down["at"] = time.monotonic() - t0
        return at_full(st, services) and all(t["node"] != node for name in services
                                            for t in running(st["services"][name]))
    # Kubernetes notices a silent node after the node monitor's grace period, and replaces its pods
    # after their toleration of the unreachable taint: slower than Swarm, hence the longer bound.
    # Whatever happens, the figures are recorded and the node is started again.
    try:
        polled, st = watch.until(back, 180, t0)
        exact, missed = healthy_again_s(st, services, before, wall), None
        time.sleep(2)
    except TimeoutError as err:
        polled, exact, missed = None, None, str(err)
    finally:
        stopper.join()
        if restart:  # first: the load may take a while to collect its last answers
            docker("start", node)
        load_result = load.stop()
    result = record("stop-worker", target, load_result, exact if exact is not None else polled,
                    polled_s=None if polled is None else round(polled, 2), node=node, tasks_lost=lost,
                    node_down_s=round(down["at"], 2) if "at" in down else None, lowest=watch.lowest,
                    **({"outcome": missed} if missed else {}))
    if restart:
        # A restarted Kubernetes node re-registers and starts its pod network first: minutes when loaded.
        Watch(target, services).until(lambda st: any(n["hostname"] == node and n["state"] == "ready"
                                                     for n in st["nodes"]), 300)
    return result


def rolling_update(target: Target, service: str = "web", version: str = "drill-2", rate: float = 20.0,
                   services=APP_SERVICES, extra_args: tuple = ()) -> dict:
    current = target.state()["services"][service]["env"].get("APP_VERSION")
    if current == version:  # an unchanged env rolls nothing out (a cluster drilled before)
        version = f"{version}-{time.strftime('%H%M%S')}"
    watch = Watch(target, services)
    load = load_for(target, rate).start()
    time.sleep(2)
    t0 = time.monotonic()
    target.update_env(service, {"APP_VERSION": version}, extra_args)

    def done(st):
        s = st["services"][service]
        return (s["update"] == "completed" and s["env"].get("APP_VERSION") == version and at_full(st, services))
    seconds, _ = watch.until(done, 240, t0)
    time.sleep(2)
    return record("rolling-update", target, load.stop(), seconds, service=service, version=version,
                  lowest=watch.lowest)


def failed_update(target: Target, service: str = "web", rate: float = 20.0, services=APP_SERVICES,
                  env: Optional[dict] = None, extra_args: tuple = ()) -> dict:
    env = env or {"FAIL_HEALTHZ": "1", "APP_VERSION": "broken"}
    before = target.state()["services"][service]["env"].get("APP_VERSION")
    within = target.rollback_within_s(service)
    # The load runs until the rollback: Kubernetes first waits for the progress deadline and the
    # rollback controller's delay (several minutes).
    watch = Watch(target, services)
    load = load_for(target, rate, max_seconds=within + 60).start()
    time.sleep(2)
    t0 = time.monotonic()
    target.update_env(service, env, extra_args)
    seconds, st = watch.until(lambda st: st["services"][service]["update"] in ("rollback_completed", "paused",
                                                                                "rollback_paused")
                              and at_full(st, services), within, t0)
    time.sleep(2)
    s = st["services"][service]
    return record("failed-update", target, load.stop(), seconds, service=service, outcome=s["update"],
                  version_after=s["env"].get("APP_VERSION"), version_before=before, lowest=watch.lowest)


def phoenix(target: Target, interval: int = 10, duration: float = 50, rate: float = 20.0,
            services=APP_SERVICES, image: Optional[str] = None) -> dict:
    """Phoenix mode for `duration` seconds at `interval`, under load: the stack's controller sped up,
    or one rendered from components/apps/phoenix.py for the drill and removed after it."""
    from tests.drills.phoenix_runs import run_for

    if target.app_url:
        wait_ready(target, 120)  # before the controller starts: its rounds keep services `updating`
    state = target.state()
    run = run_for(target, interval, services, image)
    run.start(state)
    watch = Watch(target, services, poll=0.3)
    load = load_for(target, rate, wait=False).start()
    t0 = time.monotonic()
    try:
        watch.until(lambda st: time.monotonic() - t0 > duration, duration + 30)
    finally:
        run.stop()
    observed = time.monotonic() - t0

    def closed(st):
        idle = all(st["services"][n]["update"] not in BUSY for n in services)
        return idle and run.closed(st) and at_full(st, services)
    try:
        closed_s, _ = watch.until(closed, 90)
    finally:
        time.sleep(1)
        load_result = load.stop()
        figures = run.finish()
    return record("phoenix", target, load_result, None, interval_s=interval, observed_s=round(observed, 1),
                  **figures, closed_after_stop_s=round(closed_s, 1), lowest=watch.lowest,
                  desired={n: state["services"][n]["desired"] for n in services}, floor=run.floor(state))


def write(records: list[dict], path: Path = RESULTS) -> Path:
    """The records, beside the latest ones of other orchestrators already in the file (Swarm's and
    Kubernetes' figures side by side)."""
    path.parent.mkdir(exist_ok=True)
    mine = {r.get("orchestrator") for r in records}
    try:
        kept = [r for r in json.loads(path.read_text())["drills"] if r.get("orchestrator", "swarm") not in mine]
    except (OSError, ValueError, KeyError):
        kept = []
    path.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "drills": kept + records},
                               indent=2))
    return path

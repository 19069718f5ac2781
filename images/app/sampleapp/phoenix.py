"""Phoenix mode's controller: replace one running container of each chosen service, on a schedule.

    python3 -m sampleapp.phoenix swarm        # long-running, on a Swarm manager, docker socket mounted
    python3 -m sampleapp.phoenix k8s          # one pass (a CronJob run), with a ServiceAccount token
    python3 -m sampleapp.phoenix healthcheck  # exit 0 while the swarm loop is alive (heartbeat file)

Environment: PHOENIX_SERVICES (web,api)  PHOENIX_INTERVAL (seconds, 300)
             DOCKER_SOCKET (/var/run/docker.sock)  PHOENIX_NAMESPACE (k8s; default: the pod's own)
Standard library only (the sample app image has nothing else). Every action is one line on stdout:
`<time> phoenix <event> key=value ...` (`docker service logs phoenix`, `kubectl logs job/...`).

Swarm: how one task is replaced without ever dropping below the desired healthy count
------------------------------------------------------------------------------------
Swarm has no "replace this task" API, and the obvious tools are wrong:
- `service update --force` (bump TaskTemplate.ForceUpdate) makes every task dirty: the whole
  service is rolled each interval, not one container.
- surge by one and scale back: on scale-down Swarm removes a task of its own choice (the most loaded
  node, ties broken at random), very often the fresh one, so the oldest is not replaced.
- stop the victim's container on its node: Swarm only learns of it when the container is gone. It
  never took the task out of DNS first (it does for its own shutdowns: deregister, wait 2 s, then
  SIGTERM), so clients resolving the service meet refused connections; the slot then restarts
  stop-first (capacity dips) and a surge would have to be undone by a random scale-down.
What Swarm does offer: its updater replaces only *dirty* tasks, one at a time, start-first, health
gated (a task is `running` only once its health check passed), deregistering the old one from DNS
before stopping it, watching the monitor window and rolling back on failure: the service's own
update policy. A spec change that touches only placement constraints makes dirty exactly the tasks
whose node no longer satisfies them (swarmkit's IsTaskDirtyPlacementConstraintsOnly); every other
task stays as it is, and removing the constraint afterwards makes no task dirty. So one round is:

  1. victim = the oldest running task; refuse unless every desired replica runs and no rollout is on;
  2. pause every other active node (availability `pause`: running tasks untouched, nothing new is
     placed there) and label the victim's node `phoenix.rotate=<round>`;
  3. add the constraint `node.labels.phoenix.rotate!=<round>` to the service: the victim (and only
     the tasks on its node) becomes dirty; its start-first replacement has no eligible node and waits;
  4. remove the label: the replacement is placed on the victim's own node (the spread stays as it
     was), then resume the other nodes (pause lasts about a second);
  5. Swarm starts the replacement, waits for it to be healthy, deregisters and stops the victim,
     watches the monitor window (or rolls back);
  6. once the update is over, remove the constraint (no task is dirty: nothing else moves).
Exactly one container is replaced whenever the victim is alone on its node for that service (the
spread preference keeps it so while replicas <= nodes); tasks sharing its node are replaced with it,
each start-first. Every mark the controller leaves (node labels `phoenix.paused`, `phoenix.rotate`,
the constraint) is recognisable, and `recover()` clears them before each round, so a controller
killed mid-round leaves nothing behind once it is rescheduled.

Kubernetes: a CronJob runs one pass: per service, when every pod is Ready, evict the oldest pod
through the Eviction API, which honours the PodDisruptionBudget (never below minAvailable); its
ReplicaSet starts the replacement. The ServiceAccount may only get/list pods and create evictions.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional
from urllib.parse import quote, urlencode

ROTATE_LABEL = "phoenix.rotate"
PAUSED_LABEL = "phoenix.paused"
CONSTRAINT_PREFIX = f"node.labels.{ROTATE_LABEL}!="
HEARTBEAT = os.environ.get("PHOENIX_HEARTBEAT", "/tmp/phoenix-heartbeat")
BUSY_UPDATE_STATES = {"updating", "rollback_started", "paused", "rollback_paused"}
DONE_UPDATE_STATES = {"completed", "rollback_completed", "paused", "rollback_paused"}
K8S_SELECTOR = "app.kubernetes.io/part-of=phoenix,app.kubernetes.io/name={service}"


# --- logging ------------------------------------------------------------------------------------
def _value(v) -> str:
    text = str(v)
    return json.dumps(text) if (not text or any(c in text for c in ' "=')) else text


def format_line(event: str, /, program: str = "phoenix", **fields) -> str:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return " ".join([ts, program, event, *(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)])


def log(event: str, /, program: str = "phoenix", **fields) -> None:
    sys.stdout.write(format_line(event, program, **fields) + "\n")
    sys.stdout.flush()


def parse_time(value: str) -> float:
    """Epoch seconds of a Docker/Kubernetes timestamp (RFC 3339, nanoseconds allowed)."""
    if not value:
        return 0.0
    value = value.rstrip("Z")
    main, _, frac = value.partition(".")
    dt = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return dt.timestamp() + (float("0." + frac[:9]) if frac else 0.0)


# --- HTTP clients --------------------------------------------------------------------------------
class ApiError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


class JsonApi:
    """Minimal JSON-over-HTTP client: `connect()` gives a fresh connection per request."""

    def __init__(self, connect: Callable[[], http.client.HTTPConnection], headers: Optional[dict] = None):
        self.connect = connect
        self.headers = headers or {}

    def request(self, method: str, path: str, body=None, ok=(200, 201, 204), content_type="application/json"):
        conn = self.connect()
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {**self.headers, **({"Content-Type": content_type} if data is not None else {})}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        payload = json.loads(raw) if raw.strip() else None
        if response.status not in ok:
            message = payload.get("message", raw.decode(errors="replace")) if isinstance(payload, dict) else raw[:200]
            raise ApiError(response.status, str(message).strip())
        return payload

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body=None, ok=(200, 201, 204)):
        return self.request("POST", path, body, ok)


def docker_api(socket_path: str) -> JsonApi:
    return JsonApi(lambda: UnixHTTPConnection(socket_path))


def k8s_api(host: str, port: str, token: str, ca_file: str) -> JsonApi:
    context = ssl.create_default_context(cafile=ca_file)
    return JsonApi(lambda: http.client.HTTPSConnection(host, int(port), context=context, timeout=30),
                   {"Authorization": f"Bearer {token}", "Accept": "application/json"})


def in_cluster(env) -> tuple[JsonApi, str]:
    """The API as this pod's ServiceAccount, and the namespace to act in (PHOENIX_NAMESPACE or the pod's)."""
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    with open(f"{sa}/token") as f:
        token = f.read().strip()
    namespace = env.get("PHOENIX_NAMESPACE") or open(f"{sa}/namespace").read().strip()
    return k8s_api(env.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc"),
                   env.get("KUBERNETES_SERVICE_PORT", "443"), token, f"{sa}/ca.crt"), namespace


def _filters(**values) -> str:
    return quote(json.dumps({k.replace("_", "-"): v for k, v in values.items()}))


# --- Swarm: decisions (pure) ---------------------------------------------------------------------
@dataclass(frozen=True)
class Skip:
    service: str
    reason: str


@dataclass(frozen=True)
class Plan:
    service: str
    service_id: str
    desired: int
    victim: dict
    """The task to replace: the oldest running one."""
    colocated: tuple
    """Other running tasks of the service on the victim's node: replaced with it."""
    pause: tuple
    """IDs of the other active nodes, paused while the replacement is placed."""

    @property
    def node_id(self) -> str:
        return self.victim["NodeID"]


def desired_replicas(service: dict) -> Optional[int]:
    replicated = service.get("Spec", {}).get("Mode", {}).get("Replicated")
    return None if replicated is None else int(replicated.get("Replicas", 1))


def task_running(task: dict) -> bool:
    return task.get("DesiredState") == "running" and task.get("Status", {}).get("State") == "running"


def task_age(task: dict, now: float) -> float:
    return now - parse_time(task.get("CreatedAt", ""))


def container_id(task: dict) -> str:
    return task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID", "")


def plan_round(service: dict, tasks: list[dict], nodes: list[dict]) -> Plan | Skip:
    """Which task to replace now, or why none (decided from the API's service, tasks and nodes)."""
    name = service.get("Spec", {}).get("Name", "?")
    desired = desired_replicas(service)
    if desired is None:
        return Skip(name, "not a replicated service")
    state = (service.get("UpdateStatus") or {}).get("State", "")
    if state in BUSY_UPDATE_STATES:
        return Skip(name, f"a rollout is not finished (update state {state})")
    if any(c.startswith(CONSTRAINT_PREFIX) for c in constraints(service["Spec"])):
        return Skip(name, "a phoenix round is still open")
    wanted = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
    running = [t for t in wanted if task_running(t)]
    if len(running) < desired or len(wanted) > len(running):
        return Skip(name, f"{len(running)}/{desired} running: not at full health")
    if desired < 1:
        return Skip(name, "scaled to 0")
    by_id = {n["ID"]: n for n in nodes}

    def usable(node_id: str) -> bool:
        node = by_id.get(node_id, {})
        return node.get("Status", {}).get("State") == "ready" and node.get("Spec", {}).get("Availability") == "active"

    candidates = [t for t in running if usable(t.get("NodeID", ""))]
    if not candidates:
        return Skip(name, "no running task on an active, ready node")
    victim = min(candidates, key=lambda t: (parse_time(t.get("CreatedAt", "")), t["ID"]))
    colocated = tuple(t for t in running if t["NodeID"] == victim["NodeID"] and t["ID"] != victim["ID"])
    pause = tuple(n["ID"] for n in nodes if n["ID"] != victim["NodeID"] and n.get("Spec", {}).get("Availability") == "active")
    return Plan(name, service["ID"], desired, victim, colocated, pause)


def constraints(spec: dict) -> list[str]:
    return list(((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("Constraints") or [])


def with_constraints(spec: dict, new: list[str]) -> dict:
    """A copy of a service spec with its placement constraints replaced (everything else as it was)."""
    spec = json.loads(json.dumps(spec))
    placement = spec.setdefault("TaskTemplate", {}).setdefault("Placement", {})
    if new:
        placement["Constraints"] = new
    else:
        placement.pop("Constraints", None)
    return spec


def rotate_constraint(round_id: str) -> str:
    return f"{CONSTRAINT_PREFIX}{round_id}"


def without_phoenix_constraints(spec: dict) -> Optional[dict]:
    """The spec without constraints this controller added, or None when it has none."""
    current = constraints(spec)
    kept = [c for c in current if not c.startswith(CONSTRAINT_PREFIX)]
    return None if kept == current else with_constraints(spec, kept)


def node_spec(node: dict, availability: Optional[str] = None, add: Optional[dict] = None,
              drop: tuple = ()) -> dict:
    spec = json.loads(json.dumps(node.get("Spec", {})))
    labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k not in drop}
    labels.update(add or {})
    spec["Labels"] = labels
    if availability:
        spec["Availability"] = availability
    return spec


def replacement_tasks(tasks: list[dict], constraint: str) -> list[dict]:
    """Tasks created by this round's update: their spec carries the round's constraint."""
    return [t for t in tasks if constraint in constraints({"TaskTemplate": t.get("Spec", {})})
            and t.get("DesiredState") in ("running", "ready")]


# --- Swarm: actions ------------------------------------------------------------------------------
class Stopped(Exception):
    """The controller was asked to stop (SIGTERM)."""


@dataclass
class Round:
    plan: Plan
    round_id: str
    started: float
    replacement: str = ""
    node: str = ""


@dataclass
class SwarmPhoenix:
    api: JsonApi
    services: list[str]
    interval: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    stop: threading.Event = field(default_factory=threading.Event)
    poll: float = 0.5
    place_timeout: float = 20.0
    update_timeout: float = 300.0
    stop_grace: float = 25.0
    """After SIGTERM, how long a round in flight may still take to finish (the service allows 30 s)."""
    heartbeat: Callable[[], None] = lambda: None

    # -- reads
    def service(self, name: str) -> Optional[dict]:
        found = [s for s in self.api.get(f"/services?filters={_filters(name=[name])}") or []
                 if s.get("Spec", {}).get("Name") == name]
        return found[0] if found else None

    def tasks(self, name: str) -> list[dict]:
        return self.api.get(f"/tasks?filters={_filters(service=[name])}") or []

    def nodes(self) -> list[dict]:
        return self.api.get("/nodes") or []

    def node_name(self, node_id: str) -> str:
        try:
            node = self.api.get(f"/nodes/{node_id}")
            return node.get("Description", {}).get("Hostname") or node_id[:12]
        except ApiError:
            return node_id[:12]

    # -- writes (optimistic concurrency: re-read and retry on a version conflict)
    def update_node(self, node_id: str, change: Callable[[dict], dict]) -> None:
        for attempt in range(5):
            node = self.api.get(f"/nodes/{node_id}")
            try:
                self.api.post(f"/nodes/{node_id}/update?version={node['Version']['Index']}", change(node))
                return
            except ApiError as err:
                if "out of sequence" not in str(err) or attempt == 4:
                    raise

    def update_service(self, name: str, change: Callable[[dict], Optional[dict]]) -> bool:
        """Apply change(spec) (None = nothing to do); True when the service was updated."""
        for attempt in range(5):
            service = self.service(name)
            if service is None:
                return False
            spec = change(service["Spec"])
            if spec is None:
                return False
            try:
                self.api.post(f"/services/{service['ID']}/update?version={service['Version']['Index']}", spec)
                return True
            except ApiError as err:
                if "out of sequence" not in str(err) or attempt == 4:
                    raise
        return False

    def wait(self, what: str, predicate: Callable[[], object], timeout: float, stoppable: bool = True):
        """Poll until predicate() is true. On stop: raise Stopped, or (not stoppable) allow stop_grace more."""
        deadline = self.clock() + timeout
        stopping = False
        while True:
            value = predicate()
            if value:
                return value
            if self.stop.is_set():
                if stoppable:
                    raise Stopped()
                if not stopping:
                    stopping, deadline = True, min(deadline, self.clock() + self.stop_grace)
            if self.clock() >= deadline:
                raise TimeoutError(f"{what} not within {timeout:.0f} s")
            self.heartbeat()
            self.sleep(self.poll)

    # -- recovery: leave no mark of an interrupted round
    def recover(self) -> None:
        for node in self.nodes():
            labels = node.get("Spec", {}).get("Labels") or {}
            if PAUSED_LABEL in labels or ROTATE_LABEL in labels:
                resume = "active" if PAUSED_LABEL in labels and node["Spec"].get("Availability") == "pause" else None
                self.update_node(node["ID"], lambda n, a=resume: node_spec(n, a, drop=(PAUSED_LABEL, ROTATE_LABEL)))
                log("recover", node=node.get("Description", {}).get("Hostname", node["ID"][:12]),
                    resumed="yes" if resume else "no")
        for name in self.services:
            service = self.service(name)
            if service is None or without_phoenix_constraints(service["Spec"]) is None:
                continue
            state = (service.get("UpdateStatus") or {}).get("State", "")
            if state in ("updating", "rollback_started"):
                continue  # the round's update is still running: finish() of a later tick removes it
            if self.update_service(name, without_phoenix_constraints):
                log("recover", service=name, constraint="removed")

    # -- one round
    def start(self, name: str) -> Optional[Round]:
        service = self.service(name)
        if service is None:
            log("skip", service=name, reason="no such service")
            return None
        nodes = self.nodes()
        plan = plan_round(service, self.tasks(name), nodes)
        if isinstance(plan, Skip):
            log("skip", service=name, reason=plan.reason)
            return None
        round_id = f"{int(time.time())}-{plan.victim['ID'][:8]}"
        constraint = rotate_constraint(round_id)
        r = Round(plan, round_id, self.clock(), node=self.node_name(plan.node_id))
        log("replace", service=name, task=plan.victim["ID"][:12], container=container_id(plan.victim)[:12],
            node=r.node, age=f"{task_age(plan.victim, time.time()):.0f}s", colocated=len(plan.colocated) or None,
            round=round_id)
        paused: list[str] = []
        labelled = False
        try:
            for node_id in plan.pause:
                self.update_node(node_id, lambda n: node_spec(n, "pause", add={PAUSED_LABEL: round_id}))
                paused.append(node_id)
            self.update_node(plan.node_id, lambda n: node_spec(n, add={ROTATE_LABEL: round_id}))
            labelled = True
            self.update_service(name, lambda s: with_constraints(s, [*constraints(s), constraint]))
            new = self.wait(f"{name}: replacement task", lambda: replacement_tasks(self.tasks(name), constraint),
                            self.place_timeout)
            r.replacement = new[0]["ID"]
            self.update_node(plan.node_id, lambda n: node_spec(n, drop=(ROTATE_LABEL,)))
            labelled = False
            self.wait(f"{name}: replacement placed", lambda: any(
                t["ID"] == r.replacement and t.get("NodeID") for t in self.tasks(name)), self.place_timeout)
        except (ApiError, TimeoutError, OSError) as err:
            log("error", service=name, step="place", error=str(err), round=round_id)
        except Stopped:
            log("stopping", service=name, step="place", round=round_id)
        finally:
            if labelled:
                self.update_node(plan.node_id, lambda n: node_spec(n, drop=(ROTATE_LABEL,)))
            for node_id in paused:
                self.update_node(node_id, lambda n: node_spec(n, "active", drop=(PAUSED_LABEL,)))
        return r

    def finish(self, r: Round) -> None:
        name = r.plan.service

        def over():
            service = self.service(name)
            if service is None:
                return "gone"
            state = (service.get("UpdateStatus") or {}).get("State", "")
            if state in DONE_UPDATE_STATES:
                return state
            if not state and without_phoenix_constraints(service["Spec"]) is None:
                return "rolled back"  # spec no longer carries the round's constraint
            return None
        try:
            outcome = self.wait(f"{name}: update", over, self.update_timeout, stoppable=False)
        except TimeoutError as err:
            log("error", service=name, step="update", error=str(err), round=r.round_id)
            outcome = "timeout"
        self.update_service(name, without_phoenix_constraints)
        tasks = {t["ID"]: t for t in self.tasks(name)}
        new = tasks.get(r.replacement, {})
        placed_on = self.node_name(new["NodeID"]) if new.get("NodeID") else "-"
        event = "replaced" if outcome == "completed" and task_running(new) else "not-replaced"
        log(event, service=name, old=r.plan.victim["ID"][:12], new=r.replacement[:12] or "-", node=placed_on,
            outcome=outcome, seconds=f"{self.clock() - r.started:.1f}", round=r.round_id)

    def tick(self) -> None:
        self.recover()
        rounds = []
        for name in self.services:  # placements one after the other, the updates run side by side
            if self.stop.is_set():
                break
            r = self.start(name)
            if r is not None:
                rounds.append(r)
        for r in rounds:  # even when stopping: a round is closed (its constraint removed) before exit
            self.finish(r)

    def run(self) -> None:
        log("start", mode="swarm", interval=f"{self.interval:g}s", services=",".join(self.services))
        next_at = self.clock() + self.interval
        while not self.stop.is_set():
            self.heartbeat()
            if self.clock() < next_at:
                self.sleep(min(1.0, next_at - self.clock()))
                continue
            next_at = self.clock() + self.interval
            try:
                self.tick()
            except Stopped:
                break
            except (ApiError, OSError, TimeoutError, ValueError) as err:
                log("error", step="tick", error=str(err))
        log("stop")


# --- Kubernetes ------------------------------------------------------------------------------------
def pod_ready(pod: dict) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def pick_pod(service: str, pods: list[dict]) -> dict | Skip:
    """The oldest pod, when every pod of the service is Ready (at least 2), else why not."""
    if len(pods) < 2:
        return Skip(service, f"{len(pods)} pod(s): phoenix needs at least 2")
    unready = [p["metadata"]["name"] for p in pods if not pod_ready(p)]
    if unready:
        return Skip(service, f"not at full health ({', '.join(sorted(unready))} not ready)")
    return min(pods, key=lambda p: (parse_time(p["metadata"].get("creationTimestamp", "")), p["metadata"]["name"]))


def k8s_pass(api: JsonApi, namespace: str, services: list[str]) -> int:
    """Evict the oldest pod of each service once; returns how many were evicted."""
    evicted = 0
    for service in services:
        selector = quote(K8S_SELECTOR.format(service=service))
        pods = (api.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}") or {}).get("items", [])
        pod = pick_pod(service, pods)
        if isinstance(pod, Skip):
            log("skip", service=service, reason=pod.reason)
            continue
        name = pod["metadata"]["name"]
        age = time.time() - parse_time(pod["metadata"].get("creationTimestamp", ""))
        try:
            api.post(f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                     {"apiVersion": "policy/v1", "kind": "Eviction",
                      "metadata": {"name": name, "namespace": namespace}}, ok=(200, 201))
        except ApiError as err:
            if err.status == 429:
                log("skip", service=service, pod=name, reason="the PodDisruptionBudget allows no eviction now")
                continue
            log("error", service=service, pod=name, step="evict", error=str(err))
            continue
        evicted += 1
        log("replace", service=service, pod=name, node=pod.get("spec", {}).get("nodeName", "-"), age=f"{age:.0f}s",
            via="eviction")
    return evicted


# --- entry points ----------------------------------------------------------------------------------
def services_from_env(env) -> list[str]:
    return [s.strip() for s in env.get("PHOENIX_SERVICES", "web,api").split(",") if s.strip()]


def touch(path: str = HEARTBEAT) -> None:
    try:
        with open(path, "w") as f:
            f.write(str(time.time()))
    except OSError:
        pass


def healthy(path: str = HEARTBEAT, max_age: float = 60.0, now: Optional[float] = None) -> bool:
    try:
        return (now or time.time()) - os.stat(path).st_mtime < max_age
    except OSError:
        return False


def main(argv=None, env=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    mode = argv[0] if argv else env.get("PHOENIX_MODE", "swarm")
    services = services_from_env(env)
    if mode == "healthcheck":
        return 0 if healthy() else 1
    if mode == "swarm":
        controller = SwarmPhoenix(docker_api(env.get("DOCKER_SOCKET", "/var/run/docker.sock")), services,
                                  float(env.get("PHOENIX_INTERVAL", "300")), heartbeat=touch)
        signal.signal(signal.SIGTERM, lambda *_: controller.stop.set())
        signal.signal(signal.SIGINT, lambda *_: controller.stop.set())
        touch()
        controller.run()
        return 0
    if mode == "k8s":
        api, namespace = in_cluster(env)
        log("start", mode="k8s", namespace=namespace, services=",".join(services))
        k8s_pass(api, namespace, services)
        return 0
    print(f"usage: python3 -m sampleapp.phoenix swarm|k8s|healthcheck (got {mode!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

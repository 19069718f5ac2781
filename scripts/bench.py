#!/usr/bin/env python3
"""`make bench`: the project against the bare-docker baseline, measured in one invocation.

1. time from nothing to a healthy cluster with the sample app, 1+2 and 1+5 nodes: through `pulumi up`
   when the Pulumi CLI and its plugins are here (scripts/e2e.sh check), else through the harness
   (tests.integration.local_swarm: the same bootstrap script and the services exactly as SwarmApp
   renders them); which one ran is recorded;
2. a converged no-op re-apply (pulumi: `pulumi up` with no change; harness: bootstrap + deploy again);
3. the fault drills (tests/drills/drills.py) on the 1+2 cluster;
each beside the bare-docker baseline (scripts/bare_swarm.py: the same node image, local/sample-app:1
run as the api) and the same kill/stop/update drills on its cluster.
4. kubeadm 1+2 (stack bench-kubeadm2): `pulumi up` from nothing until the app answers and every node is
   Ready, when the kubernetes plugin and the local/k8s-node image are here (else skipped, saying why);
5. `make up` itself: warm = its set-up steps with everything cached (venv, toolchain, images) plus
   the 1+2 `pulumi up` above; cold = warm plus the wall time of the last builds of the toolchain
   pieces the Swarm stacks need, as recorded on this machine (pieces built side by side count once;
   a piece rebuilt with warm Go caches counts its rebuild; the images build meanwhile, not counted).
Writes build/bench.json and build/bench.png (time to ready vs node count; recovery times) and prints
a table. Targets: ready <= 2x the baseline; t(1+5)/t(1+2) <= 1.3.

    .venv/bin/python scripts/bench.py [--quick] [--kubeadm-only]   (--quick: no drills)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts import bare_swarm  # noqa: E402
from scripts.swarm_state import Target, docker  # noqa: E402
from tests.drills import drills  # noqa: E402

OUT_JSON = ROOT / "build" / "bench.json"
OUT_PNG = ROOT / "build" / "bench.png"
WORKER_COUNTS = (2, 5)
TARGET_READY_RATIO = 2.0
TARGET_SCALING = 1.3


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


# --- memory --------------------------------------------------------------------------------------
class MemorySampler:
    """Peak summed memory use of a set of containers (docker stats), sampled in a thread."""

    def __init__(self, prefix: str, every: float = 2.0):
        self.prefix, self.every, self.peak, self.per_node = prefix, every, 0.0, {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.every)

    def sample(self):
        out = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", check=False, timeout=30)
        total, nodes = 0.0, {}
        for line in out.splitlines():
            name, _, usage = line.partition(" ")
            if not name.startswith(self.prefix) or "registry" in name:
                continue
            nodes[name] = mib(usage.split("/")[0].strip())
            total += nodes[name]
        if total > self.peak:
            self.peak, self.per_node = total, nodes

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()
        self.sample()

    def result(self) -> dict:
        return {"peak_total_mib": round(self.peak, 1), "nodes": len(self.per_node),
                "peak_per_node_mib": {k: round(v, 1) for k, v in sorted(self.per_node.items())}}


def mib(text: str) -> float:
    m = re.match(r"([\d.]+)\s*([KMG]i?B|B)", text)
    if not m:
        return 0.0
    scale = {"B": 1 / 2**20, "KiB": 1 / 1024, "KB": 1 / 1024, "MiB": 1, "MB": 1, "GiB": 1024, "GB": 1024}[m.group(2)]
    return float(m.group(1)) * scale


# --- the bare-docker baseline ----------------------------------------------------------------------
def raw_swarm(workers: int, keep: bool) -> tuple[float, dict]:
    with MemorySampler(f"{bare_swarm.PREFIX}-") as mem:
        seconds = bare_swarm.ready(workers)
    if not keep:
        bare_swarm.cleanup()
    return round(seconds, 2), mem.result()


def raw_target(workers: int) -> Target:
    names = bare_swarm.node_names(workers)
    nodes = [{"name": names[0], "role": "manager"}] + [{"name": n, "role": "worker"} for n in names[1:]]
    return Target(bare_swarm.PREFIX, "raw", {"nodes": nodes, "appUrl": ""})


def attempt(name: str, drill, target: Target) -> dict:
    """One drill's record; a drill that breaks is recorded with its error rather than ending the bench."""
    try:
        rec = drill(target)
    except Exception as err:  # noqa: BLE001 - recorded and shown
        rec = {"drill": name, "cluster": f"{target.source}:{target.stack}", "requests": None, "failed": None,
               "recovery_s": None, "error": f"{type(err).__name__}: {err}"}
        say(f"{name}: drill failed: {rec['error']}")
        return rec
    say(drills.line(rec))
    return rec


def raw_drills(target: Target) -> list[dict]:
    """The drills the baseline can run: its `web` has no entry URL, so only recovery is timed."""
    only = ("web",)
    return [attempt("kill-task", lambda t: drills.kill_task(t, services=only), target),
            attempt("rolling-update", lambda t: drills.rolling_update(t, version="drill-2", services=only), target),
            # Its health check is `true`: a failing version is one whose check fails, rolled back on failure.
            attempt("failed-update", lambda t: drills.failed_update(
                t, services=only, env={"APP_VERSION": "broken"},
                extra_args=("--health-cmd false", "--update-failure-action rollback")), target),
            attempt("stop-worker", lambda t: drills.stop_worker(t, services=only, restart=False), target)]


# --- the project: harness ---------------------------------------------------------------------------
def harness_ready(workers: int) -> tuple[object, dict]:
    """Nothing to a healthy app through the harness, with the concurrency of the Pulumi graph: the app
    image is built and pushed as soon as the registry runs (AppImage depends on the registry only),
    while the swarm forms; the membership labels are independent resources, run side by side."""
    from tests.integration.local_swarm import LocalSwarm

    cluster = LocalSwarm(f"bench{workers}", workers=workers)
    cluster.down()
    phases = {}
    with MemorySampler(f"bench{workers}-") as mem, ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        cluster.start()
        phases["nodes_s"] = time.monotonic() - t0
        t = time.monotonic()
        image_done = pool.submit(push_when_registry_answers, cluster)
        bootstrap(cluster)
        phases["swarm_s"] = time.monotonic() - t
        image = image_done.result()
        phases["image_wait_s"] = time.monotonic() - t - phases["swarm_s"]
        t = time.monotonic()
        apply_services(cluster, image)
        phases["services_s"] = time.monotonic() - t
        t = time.monotonic()
        cluster.wait_app(timeout=600)
        drills.wait_ready(Target(cluster.stack, "harness", cluster.outputs()), 600)  # the entry answers too
        phases["converge_s"] = time.monotonic() - t
        total = time.monotonic() - t0
    harness_outputs(cluster).write_text(json.dumps(cluster.outputs(), indent=2))  # `make status STACK=benchN`
    return cluster, {"ready_s": round(total, 2), "phases": {k: round(v, 2) for k, v in phases.items()},
                     "memory": mem.result()}


def harness_outputs(cluster) -> Path:
    from scripts.swarm_state import harness_path
    path = harness_path(cluster.stack)
    path.parent.mkdir(exist_ok=True)
    return path


def push_when_registry_answers(cluster, timeout: float = 60) -> str:
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    f"http://{cluster.registry_push}/v2/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return cluster.push_app_image()


def bootstrap(cluster) -> dict:
    """LocalSwarm.bootstrap's steps (the same swarm.sh actions), with the labels run side by side as
    the Pulumi engine runs the independent membership records."""
    leader = cluster.leader
    ids = {leader.name: leader.swarm("init", leader.address)}
    tokens = json.loads(leader.swarm("tokens"))
    with ThreadPoolExecutor(8) as pool:
        ids.update(pool.map(lambda n: (n.name, n.swarm("join", n.address, leader.address, stdin=tokens[n.role] + "\n")),
                            [n for n in cluster.nodes if n is not leader]))
        list(pool.map(lambda n: leader.swarm("label", ids[n.name], f"phoenix.node={n.name}", f"phoenix.role={n.role}"),
                      cluster.nodes))
    cluster.node_ids = ids
    return ids


def apply_services(cluster, image: str) -> int:
    """Create the services SwarmApp declares that do not exist yet (an existing one is left as is)."""
    from tests.integration.local_swarm import render_swarm_app, service_create_argv

    network, services = render_swarm_app(cluster.cfg, image)
    cluster.leader.sh(f"docker network inspect {network['name']} >/dev/null 2>&1 || "
                      f"docker network create -d overlay --attachable {network['name']} >/dev/null")
    existing = set(cluster.leader.sh("docker service ls --format '{{.Name}}'").split())
    created = 0
    for inputs in services:
        if inputs["name"] in existing:
            continue
        done = subprocess.run(cluster.leader.connection.argv(service_create_argv(inputs, network["name"])),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"service {inputs['name']}: {done.stderr.strip()}")
        created += 1
    return created


def harness_noop(cluster) -> dict:
    t0 = time.monotonic()
    before = cluster.leader.sh("docker service ls -q | xargs docker service inspect -f '{{.ID}} {{.Version.Index}}'")
    cluster.bootstrap()
    created = apply_services(cluster, cluster.push_app_image())
    cluster.wait_app(timeout=120)
    after = cluster.leader.sh("docker service ls -q | xargs docker service inspect -f '{{.ID}} {{.Version.Index}}'")
    return {"noop_s": round(time.monotonic() - t0, 2), "changed": created + (before != after)}


# --- the project: pulumi -----------------------------------------------------------------------------
def pulumi_available() -> bool:
    return subprocess.run(["bash", str(ROOT / "scripts" / "e2e.sh"), "check"], capture_output=True,
                          cwd=ROOT).returncode == 0


def pulumi(stack: str, *args: str, timeout: float = 1800) -> str:
    command = f"source scripts/pulumi-env.sh && pulumi {' '.join(args)} --stack {stack}"
    # PULUMI_DEBUG_COMMANDS: `--event-log` (event_phases) is one of the flags it enables.
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PULUMI_DEBUG_COMMANDS": "true"})
    if done.returncode != 0:
        raise RuntimeError(f"pulumi {args[0]} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def pulumi_ready(workers: int) -> tuple[Target, dict]:
    from tests.integration.local_swarm import AIRGAP, free_port

    stack = f"bench{workers}"
    subprocess.run(["bash", "-c", f"source scripts/pulumi-env.sh && pulumi stack select --create {stack}"],
                   cwd=ROOT, check=True, capture_output=True)
    config = {**AIRGAP, "workers": workers, "publishedPort": free_port(), "registryPort": free_port(),
              "subnet": f"172.30.{100 + workers}.0/24", "socketDir": f"/tmp/phoenix-{stack}"}
    for key, value in config.items():
        pulumi(stack, "config", "set", f"phoenix:{key}", json.dumps(value) if not isinstance(value, str) else value)
    events = ROOT / "build" / f"bench-events-{stack}.jsonl"
    with MemorySampler(f"{stack}-") as mem:
        t0 = time.monotonic()
        pulumi(stack, "up", "--yes", "--skip-preview", "--event-log", str(events))
        up_s = time.monotonic() - t0
        outputs = json.loads(pulumi(stack, "stack", "output", "--json"))
        target = Target(stack, "pulumi", outputs)
        drills.wait_ready(target, 600)  # `pulumi up` ended once the entry answered: this confirms it
        total = time.monotonic() - t0
    return target, {"ready_s": round(total, 2), "phases": {"pulumi_up_s": round(up_s, 2),
                                                           "until_serving_s": round(total - up_s, 2)},
                    "steps": event_phases(events), "memory": mem.result()}


# Where the time of a `pulumi up` goes: resources grouped into the steps of forming a cluster.
PHASES = (("nodes", r"docker:index/container:Container::.*-(m|w)\d+$"), ("app image", r"::\S+-image-build$"),
          ("swarm init", r"::\S+-swarm-init$"), ("joins", r"::\S+-swarm-join-"), ("labels", r"::\S+-swarm-member-"),
          ("image pulls", r"::\S+-swarm-pull-"), ("services", r"docker:index/service:Service::"),
          ("app answers", r"::\S+-ready-check$"))
KUBEADM_PHASES = (("nodes", r"docker:index/container:Container::.*-(m|w)\d+$"), ("app image", r"::\S+-image-build$"),
                  ("kubeadm init", r"::\S+-kubeadm-init$"), ("add-ons", r"::\S+-kubeadm-addons$"),
                  ("joins", r"::\S+-kubeadm-join-"), ("nodes Ready", r"::\S+-kubeadm-member-"),
                  ("app objects", r"kubernetes:apps/v1:Deployment::"), ("app answers", r"::\S+-ready-check$"))


def event_phases(path: Path, phases_of=PHASES) -> dict:
    """Per step: seconds from the start of `pulumi up` to its first resource starting and its last done
    (from Pulumi's event log; its timestamps are whole seconds)."""
    started, done, t0 = {}, {}, None
    for line in path.read_text().splitlines():
        event = json.loads(line)
        t0 = event["timestamp"] if t0 is None else t0
        for kind, into in (("resourcePreEvent", started), ("resOutputsEvent", done)):
            meta = (event.get(kind) or {}).get("metadata") or {}
            if meta.get("urn"):
                into.setdefault(meta["urn"], event["timestamp"] - t0)
    phases = {}
    for phase, pattern in phases_of:
        urns = [u for u in done if re.search(pattern, u)]
        if urns:
            phases[phase] = {"first_start_s": min(started.get(u, done[u]) for u in urns),
                             "last_done_s": max(done[u] for u in urns), "resources": len(urns)}
    return phases


def pulumi_noop(target: Target) -> dict:
    """`pulumi up` on the converged stack: --expect-no-changes makes any change an error. A preview
    first (not timed) keeps the diff of an unexpected change in build/bench-noop-diff.txt."""
    command = f"source scripts/pulumi-env.sh && pulumi preview --diff --stack {target.stack}"
    preview = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=900, cwd=ROOT)
    diff_file = ROOT / "build" / "bench-noop-diff.txt"
    if " to update" in preview.stdout or " to replace" in preview.stdout or " to create" in preview.stdout:
        diff_file.write_text(preview.stdout)
        say(f"the converged stack still has changes: {diff_file.relative_to(ROOT)}")
    t0 = time.monotonic()
    try:
        pulumi(target.stack, "up", "--yes", "--skip-preview", "--expect-no-changes")
        changed = 0
    except RuntimeError as err:
        say(f"the re-apply was not a no-op: {err}")
        changed = 1
    return {"noop_s": round(time.monotonic() - t0, 2), "changed": changed}


def pulumi_down(target: Target) -> None:
    # The stop-worker drill leaves its worker stopped; a node leaves the swarm from inside on destroy.
    stopped = docker("ps", "-aq", "--filter", f"label=io.phoenix.stack={target.stack}", "--filter", "status=exited",
                     check=False).split()
    if stopped:
        docker("start", *stopped, check=False, timeout=120)
    pulumi(target.stack, "destroy", "--yes", "--skip-preview")
    subprocess.run(["bash", "-c", f"source scripts/pulumi-env.sh && pulumi stack rm --yes --stack {target.stack}"],
                   cwd=ROOT, capture_output=True)


# --- kubeadm: time to a Ready cluster with the app ------------------------------------------------------
KUBEADM_TARGET_S = 180
"""Issue target for 1+2 kubeadm nodes with toolchain and images warm; k3d reports 20-30 s to a bare 1+2
k3s cluster on a laptop (no app, no add-ons), for scale."""


def kubeadm_problem() -> str:
    """Why the kubeadm figure cannot be measured here, or ''."""
    from components.orchestrators.kubeadm import NODE_IMAGE

    if not pulumi_available():
        return "the Pulumi CLI or a plugin is missing (scripts/e2e.sh check)"
    plugins = Path(os.environ.get("PULUMI_HOME", Path.home() / ".pulumi")) / "plugins"
    if not list(plugins.glob("resource-kubernetes-v*")):
        return "the pulumi-kubernetes plugin is not built (make toolchain: over an hour cold)"
    if subprocess.run(["docker", "image", "inspect", NODE_IMAGE], capture_output=True).returncode != 0:
        return f"{NODE_IMAGE} is not built (images/build.sh k8s-node, after make k8s-toolchain)"
    return ""


def kubeadm_ready(workers: int = 2) -> dict:
    """`pulumi up` of a 1+`workers` kubeadm stack from nothing until the app answers and every node is
    Ready, then destroy."""
    from tests.integration.local_swarm import free_port

    stack = f"bench-kubeadm{workers}"
    subprocess.run(["bash", "-c", f"source scripts/pulumi-env.sh && pulumi stack select --create {stack}"],
                   cwd=ROOT, check=True, capture_output=True)
    config = {"orchestrator": "kubeadm", "workers": workers, "publishedPort": free_port(), "registryPort": free_port(),
              "apiPort": free_port(), "subnet": f"172.30.{120 + workers}.0/24", "socketDir": f"/tmp/phoenix-{stack}",
              "registryImage": "local/registry:bookworm", "appBaseImage": "local/python-base:bookworm",
              "privileged": False}
    for key, value in config.items():
        pulumi(stack, "config", "set", f"phoenix:{key}", json.dumps(value) if not isinstance(value, str) else value)
    events = ROOT / "build" / f"bench-events-{stack}.jsonl"
    try:
        with MemorySampler(f"{stack}-") as mem:
            t0 = time.monotonic()
            pulumi(stack, "up", "--yes", "--skip-preview", "--event-log", str(events))
            up_s = time.monotonic() - t0
            nodes = docker("exec", f"{stack}-m0", "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "nodes",
                           "--no-headers").splitlines()
        ready = [line.split()[0] for line in nodes if line.split()[1] == "Ready"]
        return {"ready_s": round(up_s, 2), "nodes_ready": f"{len(ready)}/{1 + workers}", "target_s": KUBEADM_TARGET_S,
                "steps": event_phases(events, KUBEADM_PHASES), "memory": mem.result()}
    finally:
        pulumi(stack, "destroy", "--yes", "--skip-preview")
        subprocess.run(["bash", "-c", f"source scripts/pulumi-env.sh && pulumi stack rm --yes --stack {stack}"],
                       cwd=ROOT, capture_output=True)


# --- make up: warm and cold ---------------------------------------------------------------------------
SWARM_PIECES = "cli python command docker"
"""The toolchain pieces a Swarm stack needs (scripts/up.sh picks them the same way)."""


def timed(*argv: str, env: dict | None = None) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, env={**os.environ, **(env or {})}, timeout=3600)
    return time.monotonic() - t0


def warm_setup() -> dict:
    """Seconds of each set-up step of `make up` when everything is already there."""
    pieces = {"PULUMI_TOOLCHAIN_PIECES": SWARM_PIECES}
    return {"venv_s": round(timed("scripts/venv.sh"), 2),
            "toolchain_s": round(timed("bash", "scripts/toolchain.sh", env=pieces), 2),
            "images_s": round(timed("images/build.sh", "node", "base", "registry"), 2)}


def toolchain_builds() -> dict:
    """(start, end) epoch seconds of the last build of each Swarm toolchain piece (None where unknown)."""
    listing = subprocess.run(["bash", "scripts/toolchain.sh", "--list"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PULUMI_TOOLCHAIN_PIECES": SWARM_PIECES}).stdout
    cache = Path(os.environ.get("PULUMI_TOOLCHAIN_DIR", Path.home() / ".cache" / "pulumi-airgap"))
    builds = {}
    for piece, key in re.findall(r"^(\S+)\s+key=(\S+)", listing, re.M):
        built = cache / "pieces" / f"{piece}-{key}"
        done = built / ".complete"
        if not done.exists():
            builds[piece] = None
            continue
        end = done.stat().st_mtime
        if (built / ".build_seconds").is_file():  # recorded by scripts/toolchain.sh
            builds[piece] = (end - int((built / ".build_seconds").read_text()), end)
            continue
        # Built before that was recorded: the log is created when the build starts.
        born = subprocess.run(["stat", "-c", "%W", str(cache / "logs" / f"{piece}-{key}.log")],
                              capture_output=True, text=True).stdout.strip()
        builds[piece] = (int(born), end) if born.isdigit() and born != "0" else None
    return builds


def wall_seconds(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of `intervals`: builds run side by side count once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def make_up_figures(setup: dict, ready_1_2: float) -> dict:
    warm = sum(setup.values()) + ready_1_2
    builds = toolchain_builds()
    known = [b for b in builds.values() if b is not None]
    wall = wall_seconds(known)
    return {"warm_s": round(warm, 1), "setup_warm": setup,
            "toolchain_pieces_cold_s": {p: b and round(b[1] - b[0]) for p, b in builds.items()},
            "toolchain_cold_wall_s": round(wall) if known else None,
            "cold_s": round(warm + wall, 1) if len(known) == len(builds) else None}


# --- report ------------------------------------------------------------------------------------------
def chart(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    counts = [1 + w for w in WORKER_COUNTS]
    base = [result["baseline"]["ready"][str(w)]["ready_s"] for w in WORKER_COUNTS]
    proj = [result["project"]["ready"][str(w)]["ready_s"] for w in WORKER_COUNTS]
    left.plot(counts, base, "o-", label="bare docker (scripts/bare_swarm.py)", color="#777")
    left.plot(counts, proj, "o-", label=f"phoenix ({result['path']})", color="#c0392b")
    left.plot(counts, [TARGET_READY_RATIO * b for b in base], ":", color="#777", label="target: 2x bare docker")
    for x, p, b in zip(counts, proj, base):
        left.annotate(f"{p:.1f} s", (x, p), textcoords="offset points", xytext=(6, 5 if p >= b else -13),
                      color="#c0392b")
        left.annotate(f"{b:.1f} s", (x, b), textcoords="offset points", xytext=(6, 5 if b > p else -13),
                      color="#555")
    left.set_xticks(counts, [f"1+{w}" for w in WORKER_COUNTS])
    left.set_xlabel("nodes (managers + workers)")
    left.set_ylabel("seconds from nothing to all replicas healthy")
    left.set_title("Time to ready")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)

    names = ["kill-task", "stop-worker", "rolling-update", "failed-update"]
    pd = {r["drill"]: r for r in result["project"].get("drills", [])}
    bd = {r["drill"]: r for r in result["baseline"].get("drills", [])}
    xs = range(len(names))
    right.bar([x - 0.2 for x in xs], [bd.get(n, {}).get("recovery_s") or 0 for n in names], 0.4,
              label="bare docker", color="#999")
    right.bar([x + 0.2 for x in xs], [pd.get(n, {}).get("recovery_s") or 0 for n in names], 0.4,
              label="phoenix", color="#c0392b")
    for x, n in zip(xs, names):
        r = pd.get(n)
        if r and r.get("requests") is not None:
            right.annotate(f"{r['failed']}/{r['requests']}\nfailed", (x + 0.2, r["recovery_s"] or 0),
                           ha="center", fontsize=7, textcoords="offset points", xytext=(0, 3))
    right.hlines([5, 15], [-0.45, 0.55], [0.45, 1.45], linestyles=":", colors="k", label="targets (5 s, 15 s)")
    px = pd.get("phoenix")
    if px:
        lowest = ", ".join(f"{k} {v}/{px['desired'][k]}" for k, v in px["lowest"].items())
        right.text(0.02, 0.97, f"phoenix mode, {px['interval_s']} s interval for {px['observed_s']:.0f} s: "
                   f"{px['replaced']} containers replaced,\n{px['failed']}/{px['requests']} requests failed, "
                   f"lowest healthy: {lowest}", transform=right.transAxes, fontsize=7, va="top")
    right.set_ylim(0, max([r.get("recovery_s") or 0 for r in [*pd.values(), *bd.values()]] + [15]) * 1.3)
    right.set_xticks(list(xs), names)
    right.set_ylabel("seconds until back at full healthy replicas")
    right.set_title("Recovery (1+2 nodes, 20 req/s on the entry)")
    right.legend(fontsize=8, loc="center left")
    fig.suptitle(f"make bench - {result['when']} - load average {result['load_average_start']} -> "
                 f"{result['load_average_end']} on {os.cpu_count()} CPUs", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)


def table(result: dict) -> str:
    rows = [("measure", "bare docker", "phoenix", "ratio", "target")]
    for w in WORKER_COUNTS:
        b = result["baseline"]["ready"][str(w)]["ready_s"]
        p = result["project"]["ready"][str(w)]["ready_s"]
        rows.append((f"ready 1+{w} (s)", f"{b:.1f}", f"{p:.1f}", f"{p / b:.2f}x", f"<= {TARGET_READY_RATIO}x"))
    s = result["ratios"]
    rows.append(("t(1+5)/t(1+2)", f"{s['baseline_scaling']:.2f}", f"{s['project_scaling']:.2f}", "", f"<= {TARGET_SCALING}"))
    up = result.get("make_up") or {}
    for label, key, target in (("make up, warm (s)", "warm_s", "<= 90"), ("make up, cold (s)", "cold_s", "<= 1800")):
        rows.append((label, "-", f"{up[key]:.0f}" if up.get(key) is not None else "unknown", "", target))
    k = result.get("kubeadm") or {}
    rows.append(("kubeadm ready 1+2 (s)", "-", f"{k['ready_s']:.0f} ({k['nodes_ready']} Ready)" if "ready_s" in k
                 else f"skipped: {k.get('skipped', 'not run')}", "", f"<= {KUBEADM_TARGET_S}"))
    n = result["project"].get("noop", {})
    rows.append(("no-op re-apply (s)", "-", f"{n.get('noop_s', 0):.1f}", "", f"changes: {n.get('changed')}"))
    b_mem = result["baseline"]["ready"]["2"]["memory"]["peak_total_mib"]
    p_mem = result["project"]["ready"]["2"]["memory"]["peak_total_mib"]
    rows.append(("node RSS 1+2 peak (MiB)", f"{b_mem:.0f}", f"{p_mem:.0f}", f"{p_mem / b_mem:.2f}x" if b_mem else "", ""))
    bd = {r["drill"]: r for r in result["baseline"].get("drills", [])}
    for r in result["project"].get("drills", []):
        b = bd.get(r["drill"], {}).get("recovery_s")
        p = r.get("recovery_s")
        req = f"{r['failed']}/{r['requests']} failed" if r.get("requests") is not None else ""
        rows.append((f"{r['drill']} (s)", f"{b:.1f}" if b else "-", f"{p:.1f}" if p is not None else "-",
                     f"{p / b:.2f}x" if b and p else "", req))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="time to ready and no-op only, no drills")
    parser.add_argument("--kubeadm-only", action="store_true", help="only the kubeadm 1+2 time to ready")
    args = parser.parse_args(argv)
    from tests.integration.local_swarm import engine_problem

    problem = engine_problem()
    if problem:
        say(problem)
        return 1
    if subprocess.run(["docker", "image", "inspect", bare_swarm.APP_IMAGE], capture_output=True).returncode != 0:
        say(f"{bare_swarm.APP_IMAGE} missing: building it (images/build.sh app)")
        subprocess.run(["bash", str(ROOT / "images" / "build.sh"), "app"], check=True, env={**os.environ, "ENSURE_ENGINE": "0"})
    if args.kubeadm_only:
        problem = kubeadm_problem()
        if problem:
            say(f"kubeadm 1+2: not measured, {problem}")
            return 1
        figure = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_average_start": load_average(),
                  **kubeadm_ready(), "load_average_end": load_average()}
        (ROOT / "build" / "bench-kubeadm.json").write_text(json.dumps(figure, indent=2))
        print(json.dumps(figure, indent=2))
        return 0
    path = "pulumi" if pulumi_available() else "harness"
    say(f"project path: {path}" + ("" if path == "pulumi" else " (the Pulumi CLI or a plugin is missing: scripts/e2e.sh check)")
        + f"; on stacks of its own ({', '.join(f'bench{w}' for w in WORKER_COUNTS)}), never the one `make up` chose")
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "path": path, "cpus": os.cpu_count(),
              "load_average_start": load_average(), "baseline": {"ready": {}}, "project": {"ready": {}}}

    setup = warm_setup()
    say(f"make up's set-up steps, warm: {setup}")
    for workers in WORKER_COUNTS:
        bare_swarm.cleanup()
        keep = workers == 2 and not args.quick
        seconds, memory = raw_swarm(workers, keep=keep)
        result["baseline"]["ready"][str(workers)] = {"ready_s": seconds, "memory": memory}
        say(f"bare docker 1+{workers}: ready in {seconds:.1f} s, nodes peak {memory['peak_total_mib']:.0f} MiB")
        if keep:
            try:
                result["baseline"]["drills"] = raw_drills(raw_target(workers))
            finally:
                bare_swarm.cleanup()

        if path == "pulumi":
            target, ready = pulumi_ready(workers)
            cluster = None
        else:
            cluster, ready = harness_ready(workers)
            target = Target(cluster.stack, "harness", cluster.outputs())
        result["project"]["ready"][str(workers)] = ready
        say(f"phoenix 1+{workers} ({path}): ready in {ready['ready_s']:.1f} s {ready.get('phases', '')}")
        try:
            if workers == 2:
                result["project"]["noop"] = pulumi_noop(target) if cluster is None else harness_noop(cluster)
                say(f"no-op re-apply: {result['project']['noop']}")
                if not args.quick:
                    records = [attempt(name, fn, target) for name, fn in (
                        ("kill-task", drills.kill_task),
                        ("rolling-update", lambda t: drills.rolling_update(t, version="drill-2")),
                        ("failed-update", drills.failed_update),
                        ("phoenix", lambda t: drills.phoenix(t, interval=10, duration=50)),
                        ("stop-worker", lambda t: drills.stop_worker(t, restart=False)))]
                    result["project"]["drills"] = records
                    drills.write(records)
        finally:
            if cluster is None:
                pulumi_down(target)
            else:
                cluster.down()
                harness_outputs(cluster).unlink(missing_ok=True)

    b2, b5 = (result["baseline"]["ready"][str(w)]["ready_s"] for w in WORKER_COUNTS)
    p2, p5 = (result["project"]["ready"][str(w)]["ready_s"] for w in WORKER_COUNTS)
    result["ratios"] = {"ready_1+2": round(p2 / b2, 2), "ready_1+5": round(p5 / b5, 2),
                        "project_scaling": round(p5 / p2, 2), "baseline_scaling": round(b5 / b2, 2)}
    result["targets"] = {"ready_at_most_2x": max(p2 / b2, p5 / b5) <= TARGET_READY_RATIO,
                         "scaling_at_most_1.3": p5 / p2 <= TARGET_SCALING}
    if path == "pulumi":
        result["make_up"] = make_up_figures(setup, p2)
    problem = kubeadm_problem()
    if problem:
        result["kubeadm"] = {"skipped": problem}
        say(f"kubeadm 1+2: not measured, {problem}")
    else:
        result["kubeadm"] = kubeadm_ready()
        say(f"kubeadm 1+2: ready in {result['kubeadm']['ready_s']:.1f} s {result['kubeadm']['steps']}")
    result["load_average_end"] = load_average()
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(result, indent=2))
    try:
        chart(result, OUT_PNG)
    except ImportError:
        say("matplotlib missing: pip install -r requirements-bench.txt (no chart drawn)")
    print(table(result))
    print(f"\n{OUT_JSON.relative_to(ROOT)}, {OUT_PNG.relative_to(ROOT)} (path: {path}; load average "
          f"{result['load_average_start']} -> {result['load_average_end']} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A live Swarm of container nodes as the status view, the drills and the bench read it.

Which cluster: the stack named by STACK (or the caller), through `pulumi stack output --json --stack S`
when the pulumi CLI is on PATH and the stack exists, else the harness cluster of that name
(build/harness-<stack>.json, written by `python -m tests.integration.local_swarm up --stack S`), or
PHOENIX_OUTPUTS=path to an outputs file (the infra tests' convention). Reading goes through the first
manager's own engine: one `docker exec <manager> sh -c PROBE` returns the nodes, services and tasks
as the Engine API describes them, so nothing listens on TCP and the node needs only its docker CLI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]

# One `docker exec <manager> sh -c` gives the raw API objects (the docker CLI is on every Swarm node,
# python is not: docker:dind has none); they are summarised here, on the caller's side.
PROBE = ("docker node inspect $(docker node ls -q); echo @@; "
         "ids=$(docker service ls -q); [ -n \"$ids\" ] && docker service inspect $ids || echo '[]'; echo @@; "
         "tasks=$([ -n \"$ids\" ] && docker service ps -q --no-trunc $ids); "
         "[ -n \"$tasks\" ] && docker inspect $tasks || echo '[]'")


# Faster where the node has python3 (the air-gapped node image): one process asks the socket.
PY_PROBE = r'''
import http.client, json, socket
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect("/var/run/docker.sock")
def get(path):
    c = C("localhost", timeout=20); c.request("GET", path); r = c.getresponse(); body = r.read(); c.close()
    if r.status != 200: raise SystemExit(f"GET {path}: HTTP {r.status} {body[:200]!r}")
    return body.decode()
print(get("/nodes"), get("/services"), get("/tasks"), sep="@@")
'''


def summarise(nodes: list[dict], services: list[dict], tasks: list[dict]) -> dict:
    """Nodes, and per service: desired and running (= healthy: Swarm reports a task running only once
    its health check passed) replicas, update state, env, constraints and tasks."""
    names = {n["ID"]: n["Description"]["Hostname"] for n in nodes}
    out = {"nodes": [{"id": n["ID"], "hostname": n["Description"]["Hostname"], "role": n["Spec"]["Role"],
                      "state": n["Status"]["State"], "availability": n["Spec"]["Availability"],
                      "leader": bool((n.get("ManagerStatus") or {}).get("Leader")),
                      "labels": n["Spec"].get("Labels") or {}} for n in nodes], "services": {}}
    for s in services:
        spec = s["Spec"]
        mine = [t for t in tasks if t["ServiceID"] == s["ID"]]
        live = [t for t in mine if t["DesiredState"] in ("running", "ready")]
        running = [t for t in live if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
        replicated = "Replicated" in spec.get("Mode", {})
        desired = spec["Mode"]["Replicated"].get("Replicas", 1) if replicated else len(live)
        env = spec["TaskTemplate"].get("ContainerSpec", {}).get("Env") or []
        out["services"][spec["Name"]] = {
            "id": s["ID"], "mode": "replicated" if replicated else "global", "desired": desired,
            "running": len(running), "update": (s.get("UpdateStatus") or {}).get("State"),
            "update_message": (s.get("UpdateStatus") or {}).get("Message", ""),
            "env": dict(e.split("=", 1) for e in env if "=" in e),
            "constraints": (spec["TaskTemplate"].get("Placement") or {}).get("Constraints") or [],
            "tasks": [{"id": t["ID"], "node": names.get(t.get("NodeID"), ""), "state": t["Status"]["State"],
                       "desired": t["DesiredState"], "created": t["CreatedAt"], "slot": t.get("Slot"),
                       "since": t["Status"].get("Timestamp", ""),
                       "container": (t["Status"].get("ContainerStatus") or {}).get("ContainerID", ""),
                       "error": t["Status"].get("Err", "")} for t in mine],
        }
    return out


def docker(*args: str, timeout: float = 60, check: bool = True, input: str | None = None) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:4])}: {done.stderr.strip()[:300]}")
    return done.stdout


@dataclass
class Target:
    """A live cluster: where its outputs came from, its nodes, its manager container and entry URL."""

    stack: str
    source: str
    """'pulumi' (stack outputs), 'harness' (tests.integration.local_swarm) or 'file' (PHOENIX_OUTPUTS)."""
    outputs: dict = field(default_factory=dict)
    _python: Optional[bool] = field(default=None, repr=False)

    @property
    def nodes(self) -> list[dict]:
        return list(self.outputs.get("nodes", []))

    @property
    def manager(self) -> str:
        return next(n["name"] for n in self.nodes if n["role"] == "manager")

    @property
    def app_url(self) -> str:
        return self.outputs.get("appUrl", "")

    @property
    def orchestrator(self) -> str:
        return self.outputs.get("orchestrator", "swarm")

    def exec(self, node: str, *argv: str, timeout: float = 60, check: bool = True) -> str:
        return docker("exec", node, *argv, timeout=timeout, check=check)

    def sh(self, command: str, node: str | None = None, timeout: float = 60, check: bool = True) -> str:
        return self.exec(node or self.manager, "sh", "-c", command, timeout=timeout, check=check)

    def state(self) -> dict:
        if self._python is None:
            self._python = bool(self.sh("command -v python3 || true", timeout=30).strip())
        if self._python:
            raw = self.exec(self.manager, "python3", "-c", PY_PROBE, timeout=30, check=False).split("@@")
        else:
            raw = self.sh(PROBE, timeout=30, check=False).split("@@")
        if len(raw) != 3 or not raw[0].strip():
            raise RuntimeError(f"{self.manager} gave no swarm state (not a manager, or its engine is down)")
        return summarise(*(json.loads(part) for part in raw))

    # --- faults (the drills' primitives; scripts/k8s_state.KubeTarget has the Kubernetes ones) ---------
    def kill(self, task: dict) -> None:
        """`docker kill` of the task's container on its node: Swarm starts a new task."""
        self.exec(task["node"], "docker", "kill", task["container"])

    def update_env(self, service: str, env: dict[str, str], extra_args: tuple = ()) -> None:
        """A new version of `service`: its env changed, rolled out by the service's update policy."""
        adds = " ".join(f"--env-add {k}={v}" for k, v in env.items())
        self.sh(f"docker service update --detach --quiet {adds} {' '.join(extra_args)} {service} >/dev/null")

    def rollback_within_s(self, service: str) -> float:
        """How long a failed version may stand before it is rolled back (the update's health checks
        and monitor window fail it; Swarm rolls back at once)."""
        return 300.0

    def phoenix_log(self, tail: int = 200) -> list[str]:
        """The phoenix controller's action lines, oldest first ([] when it is not deployed)."""
        out = self.sh(f"docker service logs --raw --tail {tail} phoenix 2>/dev/null || true", timeout=30)
        return sorted(line.strip() for line in out.splitlines() if " phoenix " in line)


def pulumi_outputs(stack: str) -> dict | None:
    if shutil.which("pulumi") is None:
        return None
    done = subprocess.run(["pulumi", "stack", "output", "--json", "--show-secrets=false", "--stack", stack],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    if done.returncode != 0:
        return None
    values = json.loads(done.stdout or "{}")
    return values if values.get("nodes") else None


def harness_path(stack: str) -> Path:
    return ROOT / "build" / f"harness-{stack}.json"


def target(stack: str, source: str, outputs: dict) -> Target:
    """Target, or scripts.k8s_state.KubeTarget when the outputs name a Kubernetes orchestrator."""
    if outputs.get("orchestrator", "swarm") != "swarm":
        from scripts.k8s_state import KubeTarget  # it builds on Target
        return KubeTarget(stack, source, outputs)
    return Target(stack, source, outputs)


def resolve(stack: str | None = None) -> Target:
    """The live cluster for `stack` (default: $STACK, else `local`); raises LookupError saying why none."""
    path = os.environ.get("PHOENIX_OUTPUTS")
    if path and not stack:
        if not Path(path).is_file():
            raise LookupError(f"PHOENIX_OUTPUTS={path} does not exist")
        return target(os.environ.get("STACK", "file"), "file", json.loads(Path(path).read_text()))
    stack = stack or os.environ.get("STACK") or "local"
    values = pulumi_outputs(stack)
    if values:
        return target(stack, "pulumi", values)
    if harness_path(stack).is_file():
        return target(stack, "harness", json.loads(harness_path(stack).read_text()))
    why = "the pulumi CLI is not on PATH" if shutil.which("pulumi") is None else f"pulumi has no stack {stack} with outputs"
    raise LookupError(f"no live cluster for stack {stack!r}: {why}, and there is no harness cluster "
                      f"({harness_path(stack).relative_to(ROOT)}; make one with "
                      f"`.venv/bin/python -m tests.integration.local_swarm up --stack {stack}`)")

"""A live Kubernetes cluster (k3s, kubeadm) of container nodes as the drills and the infra tests read it.

The same view as scripts/swarm_state.py gives of a Swarm, so that the drills share everything but
their fault primitives: nodes (hostname, role, state ready/down) and per app service (Deployment)
the desired replica count, the rollout state in Swarm's words (updating, completed,
rollback_completed, stalled, paused), the pod template's env and one task per pod whose app
container is the task (its id changes when the kubelet restarts it; `running` = Ready and not
terminating, as Swarm counts a task running once its health check passed).

Everything is read from the API with the pinned kubectl (scripts/k8s-toolchain.sh) and the stack's
admin kubeconfig, written to a 0600 file that is removed at exit; the kubeconfig comes from, in this
order: PHOENIX_KUBECONFIG (a file), the outputs' `kubeconfig` when they were saved with
`--show-secrets`, `pulumi stack output kubeconfig --show-secrets` for a Pulumi stack, else the first
server's own admin kubeconfig read through its connection (`docker exec`), pointed at the
`kubernetesApi` output. Faults act on the nodes: `ctr` kills a container inside its node.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from scripts.swarm_state import ROOT, Target
from tests.k8s.apiserver import KUBE_VERSION, find

NAMESPACE = "phoenix"
APP_SELECTOR = "app.kubernetes.io/part-of=phoenix"
ROLLBACK_MANAGER = "phoenix-rollback"
"""Field manager of the rollback controller's undo (images/app/sampleapp/rollback.py)."""
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
ADMIN_KUBECONFIG = {"kubeadm": "/etc/kubernetes/admin.conf", "k3s": "/etc/rancher/k3s/k3s.yaml"}
"""Where each orchestrator keeps the admin kubeconfig on a server."""


def kubectl_missing() -> str:
    """Why the pinned kubectl cannot be used ('' when it can)."""
    if find("kubectl"):
        return ""
    return f"kubectl {KUBE_VERSION} not built: bash scripts/k8s-toolchain.sh kubectl (~3 min cold)"


def is_kubeconfig(text: object) -> bool:
    try:
        doc = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        return False
    return isinstance(doc, dict) and bool(doc.get("clusters")) and bool(doc.get("users"))


def pointed_at(raw: str, server: str) -> str:
    """The kubeconfig with every cluster's server set to `server` (the address this machine reaches)."""
    doc = yaml.safe_load(raw)
    for cluster in doc.get("clusters", []):
        cluster["cluster"]["server"] = server
    return yaml.safe_dump(doc, sort_keys=False)


# --- the cluster as the drills see it ---------------------------------------------------------------
def condition(obj: dict, kind: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def template_writer(deployment: dict) -> str:
    """The field manager that last wrote the pod template (managedFields record one time per manager)."""
    writes = [(m.get("time", ""), m.get("manager", "")) for m in deployment["metadata"].get("managedFields") or []
              if "f:template" in ((m.get("fieldsV1") or {}).get("f:spec") or {})]
    return max(writes)[1] if writes else ""


def rollout_state(d: dict) -> str:
    """The Deployment's rollout in the words of a Swarm service's UpdateStatus."""
    spec, status, generation = d["spec"], d.get("status") or {}, d["metadata"].get("generation", 0)
    if spec.get("paused"):
        return "paused"
    progressing = condition(d, "Progressing")
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        return "stalled"  # the old pods serve; the rollback controller will restore their version
    desired = spec.get("replicas", 1)
    done = (status.get("observedGeneration", 0) >= generation and status.get("updatedReplicas", 0) == desired
            and status.get("replicas", 0) == desired and status.get("availableReplicas", 0) >= desired)
    if not done:
        return "updating"
    return "rollback_completed" if template_writer(d) == ROLLBACK_MANAGER else "completed"


def pod_task(pod: dict, container: str) -> dict:
    """A pod as a Swarm task: its app container is the task, `running` once the pod is Ready."""
    status = pod.get("status") or {}
    app = next((c for c in status.get("containerStatuses") or [] if c.get("name") == container), {})
    cid = (app.get("containerID") or "").split("://")[-1]
    ready = condition(pod, "Ready")
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    running = ready.get("status") == "True" and not terminating and status.get("phase") == "Running"
    return {"id": cid or pod["metadata"]["uid"], "pod": pod["metadata"]["name"], "uid": pod["metadata"]["uid"],
            "node": pod["spec"].get("nodeName", ""),
            "state": "running" if running else "terminating" if terminating else
                     "unready" if status.get("phase") == "Running" else status.get("phase", "").lower(),
            "desired": "shutdown" if terminating else "running", "created": pod["metadata"]["creationTimestamp"],
            "since": ready.get("lastTransitionTime", "") if running else "", "container": cid,
            "restarts": app.get("restartCount", 0), "error": (app.get("state") or {}).get("waiting", {}).get("reason", "")}


def summarise(nodes: list[dict], deployments: list[dict], pods: list[dict], names: dict[str, str],
              autoscalers: list[dict] = ()) -> dict:
    """The cluster in swarm_state.summarise's shape. `names`: a Kubernetes node's address -> the stack's
    node name (its container), which the faults act on. A service's desired count is at least its
    autoscaler's minimum (a Deployment starts at one pod until the autoscaler's first pass)."""
    minimum = {a["spec"]["scaleTargetRef"]["name"]: a["spec"].get("minReplicas", 1) for a in autoscalers}
    def hostname(node: dict) -> str:
        addresses = [a["address"] for a in node.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP"]
        return next((names[a] for a in addresses if a in names), node["metadata"]["name"])

    by_name = {n["metadata"]["name"]: hostname(n) for n in nodes}
    out = {"nodes": [{"id": n["metadata"]["uid"], "hostname": by_name[n["metadata"]["name"]],
                      "role": "manager" if CONTROL_PLANE_LABEL in n["metadata"].get("labels", {}) else "worker",
                      "state": "ready" if condition(n, "Ready").get("status") == "True" else "down",
                      "availability": "drain" if n["spec"].get("unschedulable") else "active", "leader": False,
                      "labels": n["metadata"].get("labels", {})} for n in nodes], "services": {}}
    for d in deployments:
        name, template = d["metadata"]["name"], d["spec"]["template"]
        container = template["spec"]["containers"][0]
        match = d["spec"]["selector"].get("matchLabels", {})
        mine = [p for p in pods if all(p["metadata"].get("labels", {}).get(k) == v for k, v in match.items())]
        tasks = [pod_task(p, container["name"]) for p in mine]
        for t in tasks:
            t["node"] = by_name.get(t["node"], t["node"])
        out["services"][name] = {
            "id": d["metadata"]["uid"], "mode": "replicated",
            "desired": max(d["spec"].get("replicas", 1), minimum.get(name, 0)),
            "running": sum(t["state"] == "running" for t in tasks), "update": rollout_state(d),
            "update_message": condition(d, "Progressing").get("message", ""),
            "env": {e["name"]: e.get("value", "") for e in container.get("env") or [] if "value" in e},
            "image": container.get("image", ""), "pull_policy": container.get("imagePullPolicy", ""),
            "constraints": [], "tasks": tasks,
        }
    return out


# --- the target -------------------------------------------------------------------------------------
_FILES: list[Path] = []


@atexit.register
def _remove_kubeconfigs() -> None:
    for path in _FILES:
        path.unlink(missing_ok=True)


@dataclass
class KubeTarget(Target):
    """A live Kubernetes cluster of container nodes (outputs `orchestrator` k3s or kubeadm)."""

    namespace: str = NAMESPACE
    _kubeconfig: Optional[Path] = field(default=None, repr=False)

    def kubeconfig_text(self) -> str:
        env = os.environ.get("PHOENIX_KUBECONFIG")
        if env:
            return Path(env).read_text()
        if is_kubeconfig(self.outputs.get("kubeconfig")):
            return self.outputs["kubeconfig"]
        if self.source == "pulumi" and shutil.which("pulumi"):
            done = subprocess.run(["pulumi", "stack", "output", "kubeconfig", "--show-secrets", "--stack", self.stack],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60)
            if done.returncode == 0 and is_kubeconfig(done.stdout):
                return done.stdout
        path = ADMIN_KUBECONFIG[self.orchestrator]
        raw = self.exec(self.manager, "cat", path, timeout=30, check=False)
        if not is_kubeconfig(raw):
            raise RuntimeError(f"no kubeconfig for {self.stack}: none in PHOENIX_KUBECONFIG or the outputs, "
                               f"and {self.manager} has no readable {path}")
        api = self.outputs.get("kubernetesApi")
        return pointed_at(raw, api) if api else raw

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig as a 0600 file (removed when the process ends)."""
        if self._kubeconfig is None:
            text = self.kubeconfig_text()
            fd, name = tempfile.mkstemp(prefix="phoenix-kubeconfig-", suffix=".yaml")
            path = Path(name)
            _FILES.append(path)
            with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
                f.write(text)
            self._kubeconfig = path
        return self._kubeconfig

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True, input: str | None = None) -> str:
        exe = find("kubectl")
        if not exe:
            raise RuntimeError(kubectl_missing())
        done = subprocess.run([exe, f"--kubeconfig={self.kubeconfig}", *args], capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:4])}: {done.stderr.strip()[:300]}")
        return done.stdout

    def get(self, *args: str, namespaced: bool = True) -> list[dict]:
        """The objects `kubectl get ARGS` finds (in the app's namespace unless `namespaced` is False)."""
        ns = ["-n", self.namespace] if namespaced else []
        found = json.loads(self.kubectl("get", *ns, *args, "-o", "json", timeout=30))
        return found["items"] if "items" in found else [found]  # one named object comes alone

    def state(self) -> dict:
        with ThreadPoolExecutor(max_workers=2) as pool:  # two kubectl calls at once: one poll's wall time
            nodes = pool.submit(self.get, "nodes", namespaced=False)
            # managedFields (who last wrote a pod template: rollout_state) only on request.
            app = pool.submit(self.get, "deployments,pods,horizontalpodautoscalers", "-l", APP_SELECTOR,
                              "--show-managed-fields")
            items = app.result()
            nodes = nodes.result()
        names = {n["address"]: n["name"] for n in self.nodes if n.get("address")}
        return summarise(nodes, [i for i in items if i["kind"] == "Deployment"],
                         [i for i in items if i["kind"] == "Pod"], names,
                         [i for i in items if i["kind"] == "HorizontalPodAutoscaler"])

    # --- faults -----------------------------------------------------------------------------------
    def kill(self, task: dict) -> None:
        """SIGKILL the task's container inside its node (containerd's k8s.io namespace): the kubelet
        restarts it in the same pod."""
        self.exec(task["node"], "ctr", "-n", "k8s.io", "task", "kill", "--signal", "SIGKILL", task["container"])

    def update_env(self, service: str, env: dict[str, str], extra_args: tuple = ()) -> None:
        self.kubectl("-n", self.namespace, "set", "env", f"deployment/{service}", *extra_args,
                     *(f"{k}={v}" for k, v in env.items()))

    def rollback_within_s(self, service: str) -> float:
        """How long a failed version may stand before it is restored: the Deployment's progress
        deadline, the rollback controller's wait (its CronJob's PHOENIX_ROLLBACK_AFTER) and its
        schedule (every minute), then the old pods take over again."""
        deadline = json.loads(self.kubectl("-n", self.namespace, "get", "deployment", service, "-o", "json"))[
            "spec"].get("progressDeadlineSeconds", 600)
        job = json.loads(self.kubectl("-n", self.namespace, "get", "cronjob", "rollback", "-o", "json"))
        env = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].get("env") or []
        after = float(next((e["value"] for e in env if e["name"] == "PHOENIX_ROLLBACK_AFTER"), "0"))
        return deadline + after + 60 + 60


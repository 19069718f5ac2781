"""The phoenix drill's controller, per orchestrator: started, stopped, seen closed and summed up.

- Swarm: the stack's `phoenix` service sped up to the drill's interval, or one created from the inputs
  components/apps/phoenix.py renders (under the unit-test mocks) and removed after the drill; its
  actions come from `docker service logs --follow`. Swarm replaces start-first: the floor is the
  desired count.
- Kubernetes: one controller pass (a Job from the `phoenix` CronJob, as `kubectl create job --from`)
  every interval; where the stack has no CronJob, the objects components/apps/phoenix.py renders are
  applied (the CronJob suspended: the drill starts the passes) and deleted after the drill. A pass
  evicts the oldest pod of each service through the Eviction API, so the floor is the
  PodDisruptionBudget's minAvailable: the ReplicaSet starts the replacement after the eviction.
"""
from __future__ import annotations

import json
import subprocess
import threading
import uuid
from typing import Callable, Optional

import pulumi

from scripts.swarm_state import Target
from tests.drills.drills import Watch, at_full, running

NAME = "phoenix"


def rendered(stack: str, interval: int, services, build: Callable):
    """The mocks after `build(cfg)` made the phoenix controller for the drill's config."""
    from components.config import parse
    from tests.unit.conftest import Mocks

    cfg = parse({"phoenix": True, "phoenixInterval": interval, "phoenixServices": list(services)}, stack)
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="phoenix", stack=stack, preview=False)

    @pulumi.runtime.test
    def render():
        return build(cfg).urn
    render()
    return mocks


# --- Swarm ------------------------------------------------------------------------------------------
def phoenix_service_argv(inputs: dict) -> list[str]:
    """`docker service create` for the inputs of the phoenix controller's pulumi-docker Service."""
    task, spec = inputs["taskSpec"], inputs["taskSpec"]["containerSpec"]
    health, restart = spec["healthcheck"], task["restartPolicy"]
    limits, reserve = task["resources"]["limits"], task["resources"]["reservation"]
    argv = ["docker", "service", "create", "--quiet", "--detach", "--name", inputs["name"], "--replicas", "1",
            "--health-cmd", " ".join(health["tests"][1:]), "--health-interval", health["interval"],
            "--health-timeout", health["timeout"], "--health-retries", str(int(health["retries"])),
            "--health-start-period", health["startPeriod"], "--stop-grace-period", spec["stopGracePeriod"],
            "--restart-condition", restart["condition"], "--restart-delay", restart["delay"],
            "--limit-cpu", str(limits["nanoCpus"] / 1e9), "--limit-memory", str(int(limits["memoryBytes"])),
            "--reserve-cpu", str(reserve["nanoCpus"] / 1e9), "--reserve-memory", str(int(reserve["memoryBytes"])),
            "--update-order", inputs["updateConfig"]["order"]]
    for m in spec["mounts"]:
        argv += ["--mount", f"type={m['type']},source={m['source']},target={m['target']}"]
    for c in task["placement"]["constraints"]:
        argv += ["--constraint", c]
    for k, v in spec["env"].items():
        argv += ["--env", f"{k}={v}"]
    for label in inputs["labels"]:
        argv += ["--label", f"{label['label']}={label['value']}"]
    return argv + [spec["image"], *spec["commands"]]


def render_phoenix(stack: str, image: str, interval: int, services) -> dict:
    """The phoenix controller's service inputs exactly as components/apps/phoenix.py renders them."""
    from components.apps.phoenix import swarm_phoenix

    mocks = rendered(stack, interval, services, lambda cfg: swarm_phoenix("px", cfg.app, image, cfg.labels).service)
    return mocks.of("docker:index/service:Service")["px-service"]


class LogFollower:
    """`docker service logs --follow` of a service, collected in a thread (a removed task's logs are gone)."""

    def __init__(self, target: Target, service: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(["docker", "exec", target.manager, "docker", "service", "logs", "--follow",
                                      "--raw", "--tail", "0", service], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def stop(self) -> list[str]:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=5)
        return sorted(l for l in self.lines if " phoenix " in l)


class SwarmRun:
    def __init__(self, target: Target, interval: int, services, image: Optional[str]):
        self.target, self.interval, self.services, self.image = target, interval, services, image

    def start(self, state: dict) -> None:
        target = self.target
        self.created, self.slow = NAME not in state["services"], None
        if self.created:
            image = self.image or target.sh("docker service inspect web --format "
                                            "'{{.Spec.TaskTemplate.ContainerSpec.Image}}'").strip()
            target.exec(target.manager, *phoenix_service_argv(render_phoenix(target.stack, image, self.interval,
                                                                               self.services)))
        else:
            slow = state["services"][NAME]["env"].get("PHOENIX_INTERVAL")
            if slow and float(slow) > self.interval:  # the stack's own controller, sped up for the drill
                self.slow = slow
                target.sh(f"docker service update --detach --quiet --env-add PHOENIX_INTERVAL={self.interval} "
                          f"{NAME} >/dev/null")
        Watch(target, (NAME,)).until(lambda st: at_full(st, (NAME,)), 60)
        self.follower = LogFollower(target, NAME)

    def stop(self) -> None:
        # Stop the controller as Swarm does (SIGTERM): it closes the round in flight, then exits.
        if self.created:
            self.target.sh(f"docker service scale --detach {NAME}=0 >/dev/null")
        elif self.slow:
            self.target.sh(f"docker service update --detach --quiet --env-add PHOENIX_INTERVAL={self.slow} "
                           f"{NAME} >/dev/null")

    def closed(self, st: dict) -> bool:
        """The controller stopped (when the drill made it) and left no mark on services or nodes."""
        marks = any(c.startswith("node.labels.phoenix.rotate") for n in self.services
                    for c in st["services"][n]["constraints"])
        marks = marks or any(k in n["labels"] for n in st["nodes"] for k in ("phoenix.paused", "phoenix.rotate"))
        return (not self.created or not running(st["services"][NAME])) and not marks

    def finish(self) -> dict:
        lines = self.follower.stop()
        if self.created:
            self.target.sh(f"docker service rm {NAME} >/dev/null")
        replaced = [l for l in lines if " phoenix replaced " in l]
        rounds = [float(l.split("seconds=")[1].split()[0]) for l in replaced if "seconds=" in l]
        return {"replaced": len(replaced), "rounds": len([l for l in lines if " phoenix replace " in l]),
                "round_s_max": max(rounds) if rounds else None,
                "errors_logged": [l for l in lines if " phoenix error " in l or " not-replaced " in l][:5]}

    def floor(self, state: dict) -> dict:
        """Swarm starts each replacement before it stops the old task: never below the desired count."""
        return {n: state["services"][n]["desired"] for n in self.services}


# --- Kubernetes -------------------------------------------------------------------------------------
def render_k8s_phoenix(stack: str, image: str, pull_policy: str, interval: int, services, namespace: str) -> list[dict]:
    """The phoenix controller's objects (ServiceAccount, Role, RoleBinding, CronJob) exactly as
    components/apps/phoenix.py renders them."""
    from components.apps.phoenix import k8s_phoenix
    from tests.k8s.manifests import objects

    mocks = rendered(stack, interval, services, lambda cfg: k8s_phoenix(
        "px", cfg.app, image, cfg.labels, namespace, pull_policy=pull_policy).cronjob)
    return objects(mocks.resources).objects


class KubeRun:
    def __init__(self, target, interval: int, services, image: Optional[str]):
        self.target, self.interval, self.services, self.image = target, interval, services, image
        self.prefix = f"{NAME}-drill-{uuid.uuid4().hex[:5]}"
        self.jobs: list[str] = []
        self.stopping = threading.Event()

    def ns(self, *args: str) -> list[str]:
        return ["-n", self.target.namespace, *args]

    def start(self, state: dict) -> None:
        target = self.target
        found = target.kubectl(*self.ns("get", "cronjob", NAME, "--ignore-not-found", "-o", "name"), timeout=30)
        self.objects: list[dict] = []
        if not found.strip():
            web = state["services"]["web"]
            self.objects = render_k8s_phoenix(target.stack, self.image or web["image"], web["pull_policy"],
                                              self.interval, self.services, target.namespace)
            for obj in self.objects:
                if obj["kind"] == "CronJob":
                    obj["spec"]["suspend"] = True  # the drill starts the passes itself
            target.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": self.objects}))
        self.thread = threading.Thread(target=self._passes, name="phoenix-passes", daemon=True)
        self.thread.start()

    def _passes(self) -> None:
        """One pass now, then one per interval (the CronJob's own schedule counts minutes). Each is a Job
        of the CronJob's template, as `kubectl create job --from` makes it but without the CronJob as
        owner: the CronJob's history limit would delete the finished ones, and their logs with them."""
        (cronjob,) = self.target.get("cronjob", NAME)
        template = cronjob["spec"]["jobTemplate"]
        while True:
            name = f"{self.prefix}-{len(self.jobs)}"
            job = {"apiVersion": "batch/v1", "kind": "Job", "spec": template["spec"],
                   "metadata": {**template.get("metadata", {}), "name": name, "namespace": self.target.namespace}}
            self.target.kubectl("create", "-f", "-", input=json.dumps(job), timeout=30)
            self.jobs.append(name)
            if self.stopping.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)

    def job_states(self) -> dict[str, str]:
        items = json.loads(self.target.kubectl(*self.ns("get", "jobs", *self.jobs, "-o", "json"), timeout=30))["items"]
        states = {}
        for job in items:
            done = {c["type"] for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"}
            states[job["metadata"]["name"]] = ("failed" if "Failed" in done else
                                               "complete" if "Complete" in done else "active")
        return states

    def closed(self, st: dict) -> bool:
        """Every pass the drill started has ended."""
        return not self.jobs or "active" not in self.job_states().values()

    def finish(self) -> dict:
        states = self.job_states() if self.jobs else {}
        lines = []
        for name in self.jobs:
            out = self.target.kubectl(*self.ns("logs", f"job/{name}"), timeout=30, check=False)
            lines += [l.strip() for l in out.splitlines() if " phoenix " in l]
        if self.jobs:
            self.target.kubectl(*self.ns("delete", "job", *self.jobs, "--wait=false"), timeout=60, check=False)
        if self.objects:
            self.target.kubectl("delete", "--ignore-not-found", "-f", "-", timeout=60, check=False,
                                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": self.objects}))
        evicted = [l for l in sorted(lines) if " phoenix replace " in l]
        failed_jobs = [f"pass {name} failed" for name, s in states.items() if s == "failed"]
        return {"replaced": len(evicted), "rounds": len(self.jobs), "round_s_max": None,
                "errors_logged": (failed_jobs + [l for l in lines if " phoenix error " in l])[:5],
                "skipped": len([l for l in lines if " phoenix skip " in l])}

    def floor(self, state: dict) -> dict:
        """An eviction removes a pod before its ReplicaSet starts the replacement: the floor is the
        disruption budget (minAvailable) the eviction honours."""
        budgets = json.loads(self.target.kubectl(*self.ns("get", "pdb", "-o", "json"), timeout=30))["items"]
        floor = {b["metadata"]["name"]: b["spec"].get("minAvailable") for b in budgets}
        return {n: floor.get(n) for n in self.services}


def run_for(target: Target, interval: int, services, image: Optional[str]):
    from scripts.k8s_state import KubeTarget
    return (KubeRun if isinstance(target, KubeTarget) else SwarmRun)(target, interval, services, image)

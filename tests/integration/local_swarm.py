"""A Swarm of docker-in-docker nodes formed by the project's own bootstrap, without the Pulumi engine.

Node containers are started as DockerNodes starts them: the same names, fixed addresses, node
command (swarm.container_runtime), privileges and registry, all from a config validated by
components.config.parse. Every bootstrap step is an action of scripts/swarm.sh run through
DockerExec: the code the components run. Besides the integration tests, it gives the infra tests,
the drills and `make bench` a live cluster where no Pulumi engine is available:

    python -m tests.integration.local_swarm up [--stack NAME] [--workers N]   # prints outputs JSON
    python -m tests.integration.local_swarm down [--stack NAME]

The outputs have the shape of `pulumi stack output --json` (nodes, managerAddress, appUrl).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from components.config import ClusterConfig, parse
from components.nodes.docker_nodes import MANAGER_OFFSET, REGISTRY_OFFSET, SHARED_DIR, WORKER_OFFSET, NodeContext, node_names
from components.nodes.node import DockerExec
from components.orchestrators import swarm

ROOT = Path(__file__).resolve().parents[2]
# The air-gapped images built by images/build.sh (see `make images`).
AIRGAP = {"nodeImage": "local/swarm-node:bookworm", "registryImage": "local/registry:bookworm",
          "appBaseImage": "local/python-base:bookworm", "endpointMode": "dnsrr", "privileged": False}


def docker(*args: str, input: str | bytes | None = None, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout,
                          text=not isinstance(input, bytes))
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed: {done.stderr!s}".strip())
    return done.stdout if isinstance(done.stdout, str) else done.stdout.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_subnet(stack: str) -> str:
    """A /24 in 172.31.100-199.0 that no network of the engine overlaps, the stack's own hash first.

    Clusters of this harness live side by side (a test's fixture and the one it starts beside it):
    a hash alone gave two of them the same subnet about once in a hundred runs."""
    ids = docker("network", "ls", "-q").split()
    taken = [ipaddress.ip_network(cidr) for cidr in
             docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *ids).split()]
    start = sum(map(ord, stack))
    for k in range(100):
        net = ipaddress.ip_network(f"172.31.{100 + (start + k) % 100}.0/24")
        if not any(net.version == t.version and net.overlaps(t) for t in taken):
            return str(net)
    raise RuntimeError("every /24 of 172.31.100.0-172.31.199.0 overlaps a Docker network: remove stale ones "
                       "(docker network ls --filter label=io.phoenix.stack)")


def engine_problem() -> str | None:
    """Why no live test can run here, or None."""
    try:
        docker("info", timeout=20)
    except FileNotFoundError:
        return "no docker CLI on PATH: run scripts/engine.sh"
    except (RuntimeError, subprocess.TimeoutExpired):
        return "no Docker engine answers `docker info`: start one with scripts/engine.sh (as root)"
    for image in (AIRGAP["nodeImage"], AIRGAP["registryImage"], AIRGAP["appBaseImage"]):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            return f"image {image} is missing: build it with `make images`"
    return None


@dataclass
class SwarmNode:
    name: str
    role: str
    address: str

    @property
    def connection(self) -> DockerExec:
        return DockerExec(self.name)

    def swarm(self, *args: str, stdin: str | None = None) -> str:
        """Run one action of the project's bootstrap script on this node."""
        done = subprocess.run(self.connection.argv(swarm.swarm_argv(*args)), input=stdin, capture_output=True,
                              text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"swarm {args[0]} on {self.name} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def sh(self, command: str, check: bool = True) -> str:
        return docker("exec", self.name, "sh", "-c", command, check=check)


@dataclass
class LocalSwarm:
    stack: str
    managers: int = 1
    workers: int = 2
    overrides: dict = field(default_factory=dict)
    nodes: list[SwarmNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        raw = {**AIRGAP, "subnet": free_subnet(self.stack), "managers": self.managers, "workers": self.workers,
               "publishedPort": free_port(), "registryPort": free_port(), **self.overrides}
        self.cfg: ClusterConfig = parse(raw, self.stack)
        self.net = self.cfg.nodes.subnet.rsplit(".", 1)[0]
        self.registry_pull = f"{self.net}.{REGISTRY_OFFSET}:5000"
        self.registry_push = f"127.0.0.1:{self.cfg.nodes.registry_port}"
        self.labels = [f"--label={k}={v}" for k, v in self.cfg.labels.items()]

    # --- machines -----------------------------------------------------------------------------
    def _privileges(self) -> list[str]:
        n = self.cfg.nodes
        if n.privileged:
            return ["--privileged"]
        return ["--cap-add", "ALL", *[f"--cap-drop={c}" for c in n.cap_drop],
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "--security-opt", "systempaths=unconfined", "--cgroupns", "host",
                "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]

    def _address(self, role: str, index: int) -> str:
        return f"{self.net}.{(MANAGER_OFFSET if role == 'manager' else WORKER_OFFSET) + index}"

    def _start_node(self, name: str, role: str, address: str, publish: bool) -> SwarmNode:
        runtime = swarm.ORCHESTRATOR.container_runtime(self.cfg)
        ctx = NodeContext(name, role, address, self.registry_pull, 0, self._address("manager", 0))
        ports = [f"-p={self.cfg.app.bind_address}:{h}:{c}" for h, c in runtime.ports] if publish else []
        docker("volume", "create", *self.labels, f"phoenix-{name}")
        docker("run", "-d", "--name", name, "--hostname", name, *self.labels, f"--label=io.phoenix.role={role}",
               "--network", f"phoenix-{self.stack}", "--ip", address, "--restart", "unless-stopped",
               *self._privileges(), "--tmpfs", "/run", "--tmpfs", "/var/run", *ports,
               "-v", f"phoenix-{name}:{runtime.data_dir}", "--mount", f"type=volume,dst={SHARED_DIR}",
               self.cfg.nodes.image, *runtime.command(ctx))
        return SwarmNode(name, role, address)

    def start(self) -> None:
        docker("network", "create", "--driver", "bridge", "--subnet", self.cfg.nodes.subnet,
               "--gateway", f"{self.net}.1", *self.labels, f"phoenix-{self.stack}")
        docker("run", "-d", "--name", f"phoenix-{self.stack}-registry", *self.labels, "--label=io.phoenix.role=registry",
               "--network", f"phoenix-{self.stack}", "--ip", self.registry_pull.split(":")[0],
               "-p", f"{self.registry_push}:5000", self.cfg.nodes.registry_image)
        plan, counts = [], {"manager": 0, "worker": 0}
        for name, role in node_names(self.stack, self.cfg.nodes.managers, self.cfg.nodes.workers):
            plan.append((name, role, self._address(role, counts[role]), not plan))
            counts[role] += 1
        with ThreadPoolExecutor(8) as pool:
            self.nodes = list(pool.map(lambda p: self._start_node(*p), plan))

    # --- the bootstrap, as the Swarm component runs it ---------------------------------------------
    @property
    def leader(self) -> SwarmNode:
        return self.nodes[0]

    def bootstrap(self) -> dict[str, str]:
        """init, tokens, joins, labels; returns node name -> swarm node ID."""
        ids = {self.leader.name: self.leader.swarm("init", self.leader.address)}
        tokens = json.loads(self.leader.swarm("tokens"))

        def join(node: SwarmNode) -> tuple[str, str]:
            return node.name, node.swarm("join", node.address, self.leader.address, stdin=tokens[node.role] + "\n")
        with ThreadPoolExecutor(8) as pool:
            ids.update(pool.map(join, [n for n in self.nodes if n is not self.leader]))
        for node in self.nodes:
            self.leader.swarm("label", ids[node.name], f"phoenix.node={node.name}", f"phoenix.role={node.role}")
        self.node_ids = ids
        return ids

    def add_worker(self) -> SwarmNode:
        index = sum(1 for n in self.nodes if n.role == "worker")
        name = f"{self.stack}-w{index + 1}"
        node = self._start_node(name, "worker", self._address("worker", index), publish=False)
        self.nodes.append(node)
        token = json.loads(self.leader.swarm("tokens"))["worker"]
        self.node_ids[name] = node.swarm("join", node.address, self.leader.address, stdin=token + "\n")
        self.leader.swarm("label", self.node_ids[name], f"phoenix.node={name}", "phoenix.role=worker")
        return node

    def remove_node(self, node: SwarmNode) -> None:
        """What deleting a node from the stack does: drain and forget on the leader, leave, remove."""
        self.leader.swarm("remove", self.node_ids.pop(node.name))
        node.swarm("leave")
        docker("rm", "-f", "-v", node.name)
        docker("volume", "rm", f"phoenix-{node.name}", check=False)
        self.nodes.remove(node)

    # --- app images ----------------------------------------------------------------------------
    def push_app_image(self) -> str:
        """Build the sample app image, push it to the stack's registry; returns the nodes' name for it."""
        from components.apps.app_image import APP_SOURCES, REPOSITORY, source_hash
        tag = source_hash(APP_SOURCES, self.cfg.app.base_image)
        docker("build", "-q", "--build-arg", f"BASE_IMAGE={self.cfg.app.base_image}",
               "-t", f"{self.registry_push}/{REPOSITORY}:{tag}", str(APP_SOURCES), timeout=600)
        docker("push", "-q", f"{self.registry_push}/{REPOSITORY}:{tag}", timeout=300)
        return f"{self.registry_pull}/{REPOSITORY}:{tag}"

    def deploy_app(self) -> None:
        """The sample app exactly as SwarmApp declares it, applied with the docker CLI on the leader."""
        image = self.push_app_image()
        network, services = render_swarm_app(self.cfg, image)
        self.leader.sh(f"docker network inspect {network['name']} >/dev/null 2>&1 || "
                       f"docker network create -d overlay --attachable {network['name']} >/dev/null")
        for inputs in services:
            argv = service_create_argv(inputs, network["name"])
            done = subprocess.run(self.leader.connection.argv(argv), capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"service {inputs['name']}: {done.stderr.strip()}")

    def replicas(self) -> dict[str, str]:
        """service -> "running/desired" as the leader reports it."""
        lines = self.leader.sh("docker service ls --format '{{.Name}} {{.Replicas}}'").split("\n")
        return dict(line.split()[:2] for line in lines if line.strip())

    def wait_app(self, timeout: float = 180) -> float:
        """Wait until every service runs all its replicas; returns the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            table = self.replicas()
            if table and all(r.split("/")[0] == r.split("/")[1] and r.split("/")[1] != "0" for r in table.values()):
                return time.monotonic() - t0
            time.sleep(0.3)
        raise TimeoutError(f"services not at full replicas after {timeout:.0f} s: {self.replicas()}")

    def outputs(self) -> dict:
        return {
            "nodes": [{"name": n.name, "role": n.role, "address": n.address, "uri": n.connection.uri}
                      for n in self.nodes],
            "managerAddress": self.leader.address,
            "appUrl": f"http://127.0.0.1:{self.cfg.app.published_port}/",
            "orchestrator": "swarm",
            "registry": self.registry_push,
        }

    def down(self) -> None:
        destroy(self.stack)


def render_swarm_app(cfg: ClusterConfig, image: str) -> tuple[dict, list[dict]]:
    """The inputs SwarmApp gives its network and services, rendered under Pulumi mocks."""
    import pulumi

    from components.apps.spec import sample_services
    from components.apps.swarm_app import SwarmApp
    from tests.unit.conftest import Mocks

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="phoenix", stack=cfg.stack, preview=False)

    @pulumi.runtime.test
    def render():
        app = SwarmApp("app", {"services": sample_services(cfg.app), "image": image, "app": cfg.app,
                               "labels": cfg.labels})
        return pulumi.Output.all(*[s.urn for s in app.services.values()])
    render()
    network = next(iter(mocks.of("docker:index/network:Network").values()))
    return network, list(mocks.of("docker:index/service:Service").values())


def service_create_argv(s: dict, network: str) -> list[str]:
    """`docker service create` flags for the inputs of a pulumi-docker Service."""
    def n(value) -> str:  # numbers come back from the mocks as floats
        return str(int(value))
    task, spec = s["taskSpec"], s["taskSpec"]["containerSpec"]
    health, update, rollback = spec["healthcheck"], s["updateConfig"], s["rollbackConfig"]
    limits, reserve = task["resources"]["limits"], task["resources"]["reservation"]
    restart = task["restartPolicy"]
    argv = ["docker", "service", "create", "--quiet", "--detach", "--name", s["name"], "--network", network,
            "--endpoint-mode", s["endpointSpec"]["mode"],
            "--health-cmd", " ".join(health["tests"][1:]), "--health-interval", health["interval"],
            "--health-timeout", health["timeout"], "--health-retries", n(health["retries"]),
            "--health-start-period", health["startPeriod"], "--stop-grace-period", spec["stopGracePeriod"],
            "--limit-cpu", str(limits["nanoCpus"] / 1e9), "--limit-memory", n(limits["memoryBytes"]),
            "--reserve-cpu", str(reserve["nanoCpus"] / 1e9), "--reserve-memory", n(reserve["memoryBytes"]),
            "--restart-condition", restart["condition"], "--restart-delay", restart["delay"],
            "--restart-window", restart["window"], "--restart-max-attempts", n(restart["maxAttempts"])]
    for prefix, policy in (("update", update), ("rollback", rollback)):
        argv += [f"--{prefix}-parallelism", n(policy["parallelism"]), f"--{prefix}-delay", policy["delay"],
                 f"--{prefix}-failure-action", policy["failureAction"], f"--{prefix}-monitor", policy["monitor"],
                 f"--{prefix}-max-failure-ratio", policy["maxFailureRatio"], f"--{prefix}-order", policy["order"]]
    argv += ["--mode", "global"] if s["mode"].get("global") else ["--replicas", n(s["mode"]["replicated"]["replicas"])]
    for key, value in spec["env"].items():
        argv += ["--env", f"{key}={value}"]
    for label in s["labels"]:
        argv += ["--label", f"{label['label']}={label['value']}"]
    for constraint in task["placement"].get("constraints", []):
        argv += ["--constraint", constraint]
    for pref in task["placement"].get("prefs", []):
        argv += ["--placement-pref", pref]
    for port in s["endpointSpec"].get("ports", []):
        argv += ["--publish", f"mode={port['publishMode']},target={n(port['targetPort'])},published={n(port['publishedPort'])}"]
    return argv + [spec["image"], *spec["commands"]]


def destroy(stack: str) -> None:
    label = f"label=io.phoenix.stack={stack}"
    ids = docker("ps", "-aq", "--filter", label).split()
    if ids:
        docker("rm", "-f", "-v", *ids)
    for kind in ("volume", "network"):
        names = docker(kind, "ls", "-q", "--filter", label).split()
        if names:
            docker(kind, "rm", *names, check=False)


def outputs_path(stack: str) -> Path:
    return ROOT / "build" / f"harness-{stack}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--stack", default="harness")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-app", action="store_true", help="form the swarm only")
    args = parser.parse_args(argv)
    if args.action == "down":
        destroy(args.stack)
        outputs_path(args.stack).unlink(missing_ok=True)
        return 0
    cluster = LocalSwarm(args.stack, workers=args.workers)
    t0 = time.monotonic()
    cluster.start()
    cluster.bootstrap()
    if not args.no_app:
        cluster.deploy_app()
        cluster.wait_app()
    outputs = {**cluster.outputs(), "seconds": round(time.monotonic() - t0, 1)}
    path = outputs_path(args.stack)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(outputs, indent=2))
    print(json.dumps(outputs, indent=2))
    print(f"outputs written to {path} (PHOENIX_OUTPUTS={path} points the infra tests at it)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

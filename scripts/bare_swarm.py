#!/usr/bin/env python3
"""The bare-docker baseline of `make bench`: a Swarm stood up by hand, with no IaC layer.

The docker commands a person would run for 1 manager + N workers of docker-in-docker nodes and a
3-replica healthy service: the floor that `pulumi up` is compared with. Each step is as parallel as
a person's shell would make it (`&` and `wait`): nodes start together, wait for their engines,
load the app image (`docker save | docker load`, no registry), the manager inits, the workers join,
then one overlay network and the service. The clock runs from nothing to all replicas running.

    .venv/bin/python scripts/bare_swarm.py [--workers N] [--keep]   # prints the seconds

Containers are `rawbench-m0`, `rawbench-w1`... on the network `rawbench-net`; the service is `web`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

PREFIX = "rawbench"
NETWORK = f"{PREFIX}-net"
SUBNET = "172.30.100.0/24"
NODE_IMAGE = "local/swarm-node:bookworm"
APP_IMAGE = "local/sample-app:1"
APP_COMMAND = ["python3", "-m", "sampleapp.api"]
REPLICAS = 3
# What a host that refuses --privileged allows (README, "Hosts without --privileged"), and a volume
# for the engine's data (else the inner dockerd falls back to the slow vfs storage driver).
NODE_OPTIONS = ["--volume", "/var/lib/docker", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/var/run"]


def run(*argv: str, stdin=None, timeout: float = 300) -> str:
    done = subprocess.run(argv, stdin=stdin, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def node_names(workers: int) -> list[str]:
    return [f"{PREFIX}-m0", *(f"{PREFIX}-w{i}" for i in range(1, workers + 1))]


def cleanup() -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{PREFIX}-"], capture_output=True,
                         text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=300)
    subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)


def wait_until(check, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:g} s")
        time.sleep(every)


def engine_answers(node: str) -> bool:
    return subprocess.run(["docker", "exec", node, "docker", "info"], capture_output=True).returncode == 0


def load_image(node: str, image: str) -> None:
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    try:
        run("docker", "exec", "-i", node, "docker", "load", "-q", stdin=save.stdout)
    finally:
        save.stdout.close()
        save.wait()


def replicas_running(manager: str) -> bool:
    listing = subprocess.run(["docker", "exec", manager, "docker", "service", "ls", "--filter", "name=web",
                              "--format", "{{.Replicas}}"], capture_output=True, text=True).stdout.strip()
    return listing == f"{REPLICAS}/{REPLICAS}"


def ready(workers: int, node_image: str = NODE_IMAGE, app_image: str = APP_IMAGE) -> float:
    """Seconds from nothing to a 1+`workers` swarm with `web` at 3/3 running and healthy."""
    cleanup()
    names = node_names(workers)
    manager = names[0]
    with ThreadPoolExecutor(len(names)) as pool:
        t0 = time.monotonic()
        run("docker", "network", "create", "--subnet", SUBNET, NETWORK)
        list(pool.map(lambda n: run("docker", "run", "-d", "--name", n, "--hostname", n, "--network", NETWORK,
                                    *NODE_OPTIONS, node_image, "dockerd"), names))
        list(pool.map(lambda n: wait_until(lambda: engine_answers(n), 120, f"dockerd of {n}"), names))
        list(pool.map(lambda n: load_image(n, app_image), names))
        address = run("docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}', manager)
        run("docker", "exec", manager, "docker", "swarm", "init", "--advertise-addr", address)
        token = run("docker", "exec", manager, "docker", "swarm", "join-token", "-q", "worker")
        list(pool.map(lambda n: run("docker", "exec", n, "docker", "swarm", "join", "--token", token,
                                    f"{address}:2377"), names[1:]))
        run("docker", "exec", manager, "docker", "network", "create", "-d", "overlay", f"{PREFIX}-app")
        run("docker", "exec", manager, "docker", "service", "create", "-q", "--detach", "--name", "web",
            "--replicas", str(REPLICAS), "--endpoint-mode", "dnsrr", "--network", f"{PREFIX}-app",
            "--health-cmd", "true", "--health-interval", "1s", app_image, *APP_COMMAND)
        wait_until(lambda: replicas_running(manager), 300, f"web {REPLICAS}/{REPLICAS}")
        return time.monotonic() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the swarm running (the bench drills it)")
    args = parser.parse_args(argv)
    try:
        seconds = ready(args.workers)
    finally:
        if not args.keep:
            cleanup()
    print(f"bare docker swarm 1+{args.workers} nodes, {REPLICAS} replicas ready: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

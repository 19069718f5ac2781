"""Stack config validation for kubeadm: pure functions, no Pulumi engine or mocks involved."""
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, parse
from components.orchestrators import kubeadm
from components.orchestrators.kubeadm import NODE_IMAGE
from tests.unit.conftest import refused as config_refused

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def refused(raw: dict, key: str, hint: str) -> str:
    return config_refused({"orchestrator": "kubeadm", **raw}, key, hint)


def test_the_default_node_image_is_the_air_gapped_kubernetes_node():
    cfg = parse({"orchestrator": "kubeadm"}, "dev")
    assert cfg.nodes.image == NODE_IMAGE and cfg.kubeadm.api_port == 6443


@pytest.mark.parametrize("raw,key,hint", [
    ({"nodeImage": "local/swarm-node:bookworm"}, "nodeImage", "a kubeadm node image such as local/k8s-node"),
    ({"apiPort": 8090, "publishedPort": 8090}, "apiPort", "other than phoenix:publishedPort"),
    ({"apiPort": 5001, "registryPort": 5001}, "apiPort", "other than phoenix:registryPort"),
    ({"apiPort": 70000}, "apiPort", "65535"),
    ({"publishedPort": 10250}, "publishedPort", "used by the orchestrator kubeadm"),
    ({"webReplicas": 1, "minAvailable": 1}, "minAvailable", "no pod could ever be evicted"),
    ({"endpointMode": "dnsrr"}, "endpointMode", "means nothing for orchestrator kubeadm"),
    ({"k3sVersion": "v1.30.1+k3s1"}, "k3sVersion", "means nothing for orchestrator kubeadm"),
    ({"kubeadmToolchainDir": "/tmp/x"}, "kubeadmToolchainDir", "empty on container nodes"),
])
def test_bad_kubeadm_values_are_refused(raw, key, hint):
    refused(raw, key, hint)


def test_api_port_means_nothing_for_swarm():
    with pytest.raises(ConfigError, match=r"phoenix:apiPort = 6500 is invalid: means nothing for orchestrator swarm"):
        parse({"apiPort": 6500}, "dev")


def test_the_local_kubeadm_stack_is_valid_and_apart_from_the_other_local_stacks():
    raw = {k.split(":", 1)[1]: v for k, v in yaml.safe_load((STACKS / "Pulumi.local-kubeadm.yaml").read_text())["config"].items()}
    cfg = parse(raw, "local-kubeadm")
    assert cfg.orchestrator == "kubeadm" and cfg.nodes.privileged is False, "runs where --privileged is refused"
    others = [parse({k.split(":", 1)[1]: v for k, v in yaml.safe_load(f.read_text())["config"].items()}, f.stem[7:])
              for f in STACKS.glob("Pulumi.local*.yaml") if f.name != "Pulumi.local-kubeadm.yaml"]
    for other in others:
        assert cfg.nodes.subnet != other.nodes.subnet
        assert cfg.app.published_port != other.app.published_port
        assert cfg.nodes.registry_port != other.nodes.registry_port


# --- hosts and VMs -----------------------------------------------------------------------------

HOSTS = {"substrate": "ssh", "sshPrivateKey": "k", "hosts": [{"name": "s0", "address": "10.0.0.10", "role": "manager"}]}


def toolchain(root: Path, binaries=("kubeadm", "kubelet", "kubectl"),
              images=("pause-3.10.1", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd",
                      "kube-proxy", "coredns", "flannel")) -> str:
    for b in binaries:
        (root / "bin").mkdir(parents=True, exist_ok=True)
        (root / "bin" / b).write_text(b)
    for i in images:
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "images" / f"{i}.tar").write_text(i)
    return str(root)


def test_hosts_take_the_kubernetes_toolchain_from_the_pulumi_host(tmp_path):
    cfg = parse({"orchestrator": "kubeadm", **HOSTS, "kubeadmToolchainDir": toolchain(tmp_path)}, "dev")
    assert cfg.substrate == "ssh" and cfg.kubeadm.toolchain_dir == str(tmp_path)


def test_the_toolchain_defaults_to_the_cache_of_make_k8s_toolchain(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeadm, "DEFAULT_TOOLCHAIN", toolchain(tmp_path))
    cfg = parse({"orchestrator": "kubeadm", **HOSTS}, "dev")
    assert cfg.kubeadm.toolchain_dir == str(tmp_path)
    assert parse({"orchestrator": "kubeadm"}, "dev").kubeadm.toolchain_dir == "", "containers: their image's"
    monkeypatch.setattr(kubeadm, "DEFAULT_TOOLCHAIN", str(tmp_path / "none"))
    refused(HOSTS, "kubeadmToolchainDir", "not a directory")


@pytest.mark.parametrize("binaries,images,hint", [
    (("kubeadm", "kubectl"), None, "bin/kubelet missing"),
    (None, ("kube-proxy", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"), "no images/pause"),
    (None, ("pause-3.10.1", "kube-apiserver", "kube-scheduler", "etcd"), "images/kube-controller-manager.tar missing"),
])
def test_a_toolchain_without_a_piece_is_refused_with_the_fix(tmp_path, binaries, images, hint):
    kw = {k: v for k, v in (("binaries", binaries), ("images", images)) if v is not None}
    message = refused({**HOSTS, "kubeadmToolchainDir": toolchain(tmp_path, **kw)}, "kubeadmToolchainDir", hint)
    assert "make k8s-toolchain" in message


def test_a_missing_toolchain_directory_is_refused(tmp_path):
    refused({**HOSTS, "kubeadmToolchainDir": str(tmp_path / "none")}, "kubeadmToolchainDir", "not a directory")


def test_hosts_serve_the_api_on_6443_so_another_api_port_is_refused(tmp_path):
    refused({**HOSTS, "kubeadmToolchainDir": toolchain(tmp_path), "apiPort": 7443}, "apiPort", "6443 or unset")

"""Stack config validation for k3s: pure functions, no Pulumi engine or mocks involved."""
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, parse, split_image
from components.orchestrators.k3s import image_tag
from tests.unit.conftest import refused as config_refused

STACKS = Path(__file__).resolve().parents[2] / "stacks"
SSH = {"substrate": "ssh", "sshPrivateKey": "k",
       "hosts": [{"name": "s0", "address": "10.0.0.10", "role": "manager"},
                 {"name": "a1", "address": "10.0.0.11", "role": "worker"}]}


def refused(raw: dict, key: str, hint: str) -> str:
    return config_refused({"orchestrator": "k3s", **raw}, key, hint)


def test_default_k3s_image_is_tagged_from_the_k3s_version():
    assert parse({"orchestrator": "k3s"}, "dev").nodes.image == "rancher/k3s:v1.31.4-k3s1"
    cfg = parse({"orchestrator": "k3s", "k3sVersion": "v1.30.8+k3s1"}, "dev")
    assert cfg.nodes.image == "rancher/k3s:v1.30.8-k3s1"


def test_untagged_k3s_images_get_the_release_tag_and_tagged_ones_stay():
    assert parse({"orchestrator": "k3s", "nodeImage": "mirror:5000/rancher/k3s"}, "dev").nodes.image == \
        "mirror:5000/rancher/k3s:v1.31.4-k3s1"
    assert parse({"orchestrator": "k3s", "nodeImage": "local/k3s-airgap:7"}, "dev").nodes.image == "local/k3s-airgap:7"


def test_image_helpers():
    assert image_tag("v1.31.4+k3s1") == "v1.31.4-k3s1"
    assert split_image("rancher/k3s") == ("rancher/k3s", "")
    assert split_image("reg:5000/rancher/k3s") == ("reg:5000/rancher/k3s", "")
    assert split_image("reg:5000/rancher/k3s:v1") == ("reg:5000/rancher/k3s", "v1")


def test_rancher_k3s_tag_must_match_the_k3s_version():
    refused({"nodeImage": "rancher/k3s:v1.30.0-k3s1"}, "nodeImage", "tag v1.31.4-k3s1 to match phoenix:k3sVersion")


def test_even_server_count_names_etcd():
    refused({"managers": 2}, "managers", "k3s's embedded etcd")


def test_autoscaler_bounds():
    refused({"autoscaleMax": 2}, "autoscaleMax", "at least phoenix:webReplicas (3)")
    refused({"autoscaleMax": 500}, "autoscaleMax", "between 1 and 100")


def test_disruption_budget_must_leave_a_pod_to_evict():
    refused({"minAvailable": 2, "apiReplicas": 2}, "minAvailable", "below phoenix:apiReplicas (2)")
    refused({"apiReplicas": 1}, "minAvailable", "set phoenix:minAvailable to 0 or raise the replicas")
    assert parse({"orchestrator": "k3s", "apiReplicas": 1, "minAvailable": 0}, "dev").app.min_available == 0
    # Swarm has no disruption budget: one replica with the default minAvailable stays allowed there.
    assert parse({"apiReplicas": 1}, "dev").app.replicas["api"] == 1


@pytest.mark.parametrize("port", [2379, 2380, 6443, 6444, 8472, 10250])
def test_k3s_ports_are_reserved(port):
    refused({"publishedPort": port}, "publishedPort", "used by the orchestrator k3s")


def test_airgap_dir_must_hold_binary_images_and_install_script(tmp_path):
    (tmp_path / "k3s").write_text("binary")
    message = refused({**SSH, "k3sAirgapDir": str(tmp_path)}, "k3sAirgapDir", "install.sh missing")
    assert "no k3s-airgap-images-<arch>.tar" in message
    refused({**SSH, "k3sAirgapDir": str(tmp_path / "nope")}, "k3sAirgapDir", "not a directory on the Pulumi host")
    (tmp_path / "install.sh").write_text("#!/bin/sh")
    (tmp_path / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"")
    assert parse({"orchestrator": "k3s", **SSH, "k3sAirgapDir": str(tmp_path)}, "dev").k3s.airgap_dir == str(tmp_path)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse({"orchestrator": "k3s", "managers": 4, "autoscaleMax": 1, "publishedPort": 6443}, "dev")
    lines = str(err.value).splitlines()[1:]
    assert {line.split(" = ")[0].strip() for line in lines} >= {"phoenix:managers", "phoenix:autoscaleMax",
                                                                 "phoenix:publishedPort"}


def test_the_local_k3s_stack_file_is_valid():
    stack = yaml.safe_load((STACKS / "Pulumi.local-k3s.yaml").read_text())["config"]
    cfg = parse({k.split(":", 1)[1]: v for k, v in stack.items()}, "local-k3s")
    assert (cfg.orchestrator, cfg.substrate) == ("k3s", "docker")
    assert (cfg.nodes.managers, cfg.nodes.workers) == (1, 2)
    assert cfg.nodes.image == "rancher/k3s:v1.31.4-k3s1"

"""Stack config validation: pure functions, no Pulumi engine or mocks involved."""
import os
import subprocess
from pathlib import Path

import pytest

import components.config as config_module
from components.config import BUILTIN_PASSPHRASE, ConfigError, declared, parse, passphrase_problem
from tests.unit.conftest import refused


def test_defaults_come_from_the_project_file():
    cfg = parse({}, "dev")
    assert (cfg.orchestrator, cfg.substrate) == ("swarm", "docker")
    assert (cfg.nodes.managers, cfg.nodes.workers) == (1, 2)
    assert cfg.nodes.image == "docker:27-dind"
    assert cfg.nodes.privileged is True
    assert cfg.app.replicas == {"web": 3, "api": 2}
    assert (cfg.app.bind_address, cfg.app.published_port) == ("127.0.0.1", 8080)
    assert cfg.labels == {"io.phoenix.project": "phoenix", "io.phoenix.stack": "dev"}


def test_values_arrive_as_strings_from_pulumi():
    cfg = parse({"managers": "3", "workers": "0", "privileged": "false", "capDrop": '["SYS_RESOURCE"]'}, "dev")
    assert (cfg.nodes.managers, cfg.nodes.workers, cfg.nodes.privileged) == (3, 0, False)
    assert cfg.nodes.cap_drop == ("SYS_RESOURCE",)


def test_k3s_default_node_image():
    assert parse({"orchestrator": "k3s"}, "dev").nodes.image.startswith("rancher/k3s")


def test_every_declared_key_has_a_type_default_and_description():
    for key, decl in declared().items():
        assert {"type", "default", "description"} <= decl.keys(), key


@pytest.mark.parametrize("raw, key, hint", [
    ({"orchestrator": "nomad"}, "orchestrator", "choose one of k3s, kubeadm, swarm"),
    ({"substrate": "lxc"}, "substrate", "choose one of docker, ssh, cloud"),
    ({"managers": 2}, "managers", "odd number"),
    ({"managers": 0}, "managers", "between 1 and 7"),
    ({"workers": -1}, "workers", "between 0 and 50"),
    ({"workers": "two"}, "workers", "expected an integer"),
    ({"privileged": "yes"}, "privileged", "expected a boolean"),
    ({"privileged": False, "capDrop": ["NOT_A_CAP"]}, "capDrop", "not a Linux capability"),
    ({"privileged": False, "capDrop": ["SYS_RESOURSE"]}, "capDrop", "did you mean SYS_RESOURCE?"),
    ({"capDrop": ["NET_ADMIN"]}, "capDrop", "applies only with phoenix:privileged false"),
    ({"nodeMemoryMb": 100}, "nodeMemoryMb", "at least 256"),
    ({"subnet": "172.28.0.0/28"}, "subnet", "/24 or larger"),
    ({"subnet": "not-a-net"}, "subnet", "IPv4 CIDR"),
    ({"socketDir": "relative/dir"}, "socketDir", "absolute path"),
    ({"webReplicas": 0}, "webReplicas", "between 1 and 100"),
    ({"publishedPort": 70000}, "publishedPort", "between 1 and 65535"),
    ({"publishedPort": 2377}, "publishedPort", "used by the orchestrator swarm"),
    ({"orchestrator": "k3s", "publishedPort": 6443}, "publishedPort", "used by the orchestrator k3s"),
    ({"publishedPort": 22}, "publishedPort", "SSH's"),
    ({"registryPort": 22}, "registryPort", "SSH's"),
    ({"substrate": "ssh", "sshPrivateKey": "k", "publishedPort": 2222, "hosts": [
        {"name": "a", "address": "10.0.0.1", "role": "manager", "port": 2222}]}, "publishedPort", "host a listens for SSH"),
    ({"registryPort": 8080}, "registryPort", "must differ"),
    ({"bindAddress": "localhost"}, "bindAddress", "IPv4 address"),
    ({"endpointMode": "ingress"}, "endpointMode", "choose one of vip, dnsrr"),
    ({"autoscaleMax": 2}, "autoscaleMax", "at least phoenix:webReplicas (3)"),
    ({"minAvailable": 2, "apiReplicas": 2}, "minAvailable", "below phoenix:apiReplicas (2)"),
    ({"phoenixInterval": 1}, "phoenixInterval", "between 10 and 86400"),
    ({"phoenixServices": ["db"]}, "phoenixServices", "services among web, api"),
    ({"phoenix": True, "apiReplicas": 1}, "apiReplicas", "at least 2 while phoenix mode"),
    ({"appVersion": "1 beta"}, "appVersion", "letters, digits"),
    ({"orchestrator": "k3s", "k3sVersion": "latest"}, "k3sVersion", "v1.31.4+k3s1"),
    ({"orchestrator": "k3s", "nodeImage": "docker:27-dind"}, "nodeImage", "a k3s image"),
    ({"nodeImage": "rancher/k3s:v1.31.4-k3s1"}, "nodeImage", "docker-in-docker image"),
    ({"substrate": "ssh", "sshPrivateKey": "k"}, "hosts", "substrate ssh needs phoenix:hosts"),
    ({"substrate": "ssh", "hosts": [{"name": "a", "address": "10.0.0.1", "role": "manager"}]},
     "sshPrivateKey", "pulumi config set --secret"),
    ({"substrate": "ssh", "sshPrivateKey": "k", "hosts": [{"name": "a", "address": "10.0.0.1", "role": "boss"}]},
     "hosts[0].role", "manager or worker"),
    ({"substrate": "ssh", "sshPrivateKey": "k", "hosts": [{"name": "a", "address": "10.0.0.1", "role": "worker"}]},
     "hosts", "odd number (1, 3, 5) of hosts with role manager"),
    ({"substrate": "ssh", "sshPrivateKey": "k", "hosts": '[{"name": "a"'}, "hosts", "structured YAML/JSON"),
    ({"substrate": "cloud", "sshPrivateKey": "k", "cloud": {"networkCidr": "10.0.0/16"}},
     "cloud.networkCidr", "a CIDR"),
    ({"zzz": "blue"}, "zzz", "unknown key; known keys are listed in Pulumi.yaml"),
    ({"webReplica": 3}, "webReplica", "unknown key; did you mean phoenix:webReplicas?"),
    ({"sshPrivatKey": "k"}, "sshPrivatKey", "did you mean phoenix:sshPrivateKey?"),
    ({"endpointMode": "dnsrr", "orchestrator": "k3s"}, "endpointMode", "means nothing for orchestrator k3s"),
    ({"k3sVersion": "v1.30.1+k3s1"}, "k3sVersion", "means nothing for orchestrator swarm"),
    ({"autoscaleMax": 8}, "autoscaleMax", "means nothing for orchestrator swarm"),
    ({"subnet": "10.9.0.0/24", "substrate": "ssh", "sshPrivateKey": "k",
      "hosts": [{"name": "a", "address": "10.0.0.1", "role": "manager"}]}, "subnet", "means nothing for substrate ssh"),
    ({"hosts": [{"name": "a", "address": "10.0.0.1", "role": "manager"}]}, "hosts", "means nothing for substrate docker"),
    ({"sshPrivateKey": "k"}, "sshPrivateKey", "means nothing for substrate docker"),
])
def test_bad_values_are_refused_with_key_value_and_fix(raw, key, hint):
    refused(raw, key, hint)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse({"managers": 2, "workers": -3, "endpointMode": "x"}, "dev")
    lines = str(err.value).splitlines()[1:]
    assert {line.split(" = ")[0].strip() for line in lines} == {"phoenix:managers", "phoenix:workers",
                                                                  "phoenix:endpointMode"}


def test_ssh_hosts_set_the_node_counts():
    cfg = parse({"substrate": "ssh", "sshPrivateKey": "(secret)", "sshUser": "admin", "hosts": [
        {"name": "m", "address": "10.0.0.1", "role": "manager"},
        {"name": "w1", "address": "10.0.0.2", "role": "worker", "port": 2222, "user": "ops"},
        {"name": "w2", "address": "10.0.0.3", "role": "worker"}]}, "prod")
    assert (cfg.nodes.managers, cfg.nodes.workers) == (1, 2)
    assert cfg.nodes.hosts[1].port == 2222 and cfg.nodes.hosts[1].user == "ops"
    assert cfg.nodes.hosts[2].user == "admin"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory with a stacks/ folder, for stack files with a secrets provider."""
    (tmp_path / "stacks").mkdir()
    monkeypatch.setattr(config_module, "PROJECT_FILE", tmp_path / "Pulumi.yaml")
    return tmp_path


def test_built_in_passphrase_is_refused_for_machines_with_how_to_set_one(project):
    problem = passphrase_problem("ssh", "prod", {"PULUMI_CONFIG_PASSPHRASE": BUILTIN_PASSPHRASE})
    assert "export PULUMI_CONFIG_PASSPHRASE=<passphrase>" in problem and "PULUMI_CONFIG_PASSPHRASE_FILE" in problem
    assert "pulumi stack change-secrets-provider passphrase" in problem
    assert "hcloud:token" in passphrase_problem("cloud", "prod", {"PULUMI_CONFIG_PASSPHRASE": BUILTIN_PASSPHRASE})


def test_built_in_passphrase_from_a_file_is_refused_too(project):
    (project / "pass").write_text(BUILTIN_PASSPHRASE + "\n")
    assert passphrase_problem("cloud", "prod", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(project / "pass")})


def test_own_passphrase_a_kms_or_a_local_stack_pass(project):
    assert passphrase_problem("ssh", "prod", {"PULUMI_CONFIG_PASSPHRASE": "my own"}) is None
    assert passphrase_problem("docker", "local", {"PULUMI_CONFIG_PASSPHRASE": BUILTIN_PASSPHRASE}) is None
    (project / "stacks" / "Pulumi.prod.yaml").write_text("secretsprovider: awskms://alias/x?region=eu-central-1\n")
    assert passphrase_problem("ssh", "prod", {"PULUMI_CONFIG_PASSPHRASE": BUILTIN_PASSPHRASE}) is None


def test_the_built_in_passphrase_is_what_pulumi_env_sets():
    script = Path(__file__).resolve().parents[2] / "scripts" / "pulumi-env.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    out = subprocess.run(["bash", "-c", f"source {script} && printf %s \"$PULUMI_CONFIG_PASSPHRASE\""], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out == BUILTIN_PASSPHRASE


def test_capabilities_are_stored_without_the_cap_prefix_whichever_way_they_were_written():
    cfg = parse({"privileged": False, "capDrop": ["CAP_SYS_RESOURCE", "net_admin"]}, "dev")
    assert cfg.nodes.cap_drop == ("SYS_RESOURCE", "NET_ADMIN")


def test_a_key_set_to_its_default_is_not_refused_where_it_means_nothing():
    # The engine passes every declared key with its default: only a changed value is a choice.
    parse({"endpointMode": "vip", "k3sVersion": "v1.31.4+k3s1", "orchestrator": "k3s", "autoscaleMax": "6"}, "dev")

"""Hetzner Cloud VMs: network, firewall (exactly the orchestrator's ports), SSH key, servers with
cloud-init, nodes at the servers' addresses, Swarm join wiring over SSH, the private key secret."""
import json
import re
from pathlib import Path

import pulumi
import pytest
import yaml

from components.config import ConfigError
from components.nodes.cloud_vms import CloudVms, cloud_init, private_addresses
from components.nodes.hosts import host_nodes
from components import orchestrators
from components.orchestrators.swarm import Swarm
from tests.unit.conftest import settled, server_ipv4
from tests.unit.test_ssh_hosts import KEY, action, inputs_without_secrets, unsecret

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmVvJm3Xyq0vVfLk0p0v6aNw4q5u2dQ1M3xN8kq0f9h phoenix@test"
SERVER = "hcloud:index/server:Server"
FIREWALL = "hcloud:index/firewall:Firewall"
REMOTE = "command:remote:Command"


def build(config, orchestrator="swarm", managers=1, workers=2, cloud=None, **raw):
    cfg = config(substrate="cloud", orchestrator=orchestrator, managers=managers, workers=workers,
                 sshPrivateKey="(secret)", sshPublicKey=PUBLIC_KEY,
                 cloud=json.dumps(cloud or {"location": "nbg1", "serverType": "cx32", "networkCidr": "10.20.0.0/16",
                                            "adminCidrs": ["198.51.100.0/24"]}), **raw)
    return host_nodes(cfg, orchestrators.get(orchestrator), None, private_key=pulumi.Output.secret(KEY))


def rules_of(mocks) -> set[tuple]:
    firewall = next(iter(mocks.of(FIREWALL).values()))
    return {(r["direction"], r["protocol"], r["port"], tuple(r["sourceIps"])) for r in firewall["rules"]}


def all_ready(vms):
    return settled(*vms.servers, *[r for n in vms.nodes for r in n.ready])


@pulumi.runtime.test
def test_network_and_subnet(mocks, config):
    vms = build(config)

    def check(_):
        network = mocks.of("hcloud:index/network:Network")["test-net"]
        assert network["ipRange"] == "10.20.0.0/16"
        assert network["labels"] == {"io.phoenix.project": "phoenix", "io.phoenix.stack": "test"}
        subnet = mocks.of("hcloud:index/networkSubnet:NetworkSubnet")["test-subnet"]
        assert subnet["ipRange"] == "10.20.0.0/24"
        assert subnet["type"] == "cloud" and subnet["networkZone"] == "eu-central"
        network_id = next(r for r in mocks.resources if r.name == "test-subnet").inputs["networkId"]
        assert isinstance(network_id, (int, float)) and network_id >= 1000
    return all_ready(vms).apply(check)


@pulumi.runtime.test
def test_swarm_firewall_opens_exactly_the_swarm_ports_between_nodes(mocks, config):
    vms = build(config, publishedPort=8080)

    def check(_):
        assert rules_of(mocks) == {
            ("in", "tcp", "22", ("198.51.100.0/24",)),
            ("in", "tcp", "8080", ("0.0.0.0/0", "::/0")),
            ("in", "tcp", "2376", ("198.51.100.0/24",)),
            ("in", "tcp", "2377", ("10.20.0.0/16",)),
            ("in", "tcp", "7946", ("10.20.0.0/16",)),
            ("in", "udp", "7946", ("10.20.0.0/16",)),
            ("in", "udp", "4789", ("10.20.0.0/16",)),
        }
    return all_ready(vms).apply(check)


@pulumi.runtime.test
def test_k3s_firewall_opens_the_k3s_ports_and_the_api_to_admins_only(mocks, config):
    vms = build(config, orchestrator="k3s", managers=3, workers=1, publishedPort=9000)

    def check(_):
        servers = ("10.20.0.10/32", "10.20.0.11/32", "10.20.0.12/32")
        assert rules_of(mocks) == {
            ("in", "tcp", "22", ("198.51.100.0/24",)),
            ("in", "tcp", "9000", ("0.0.0.0/0", "::/0")),
            ("in", "tcp", "6443", ("198.51.100.0/24",)),
            ("in", "tcp", "6443", ("10.20.0.0/16",)),
            ("in", "udp", "8472", ("10.20.0.0/16",)),
            ("in", "tcp", "10250", ("10.20.0.0/16",)),
            ("in", "tcp", "2379-2380", servers),
        }
    return all_ready(vms).apply(check)


@pulumi.runtime.test
def test_one_server_per_node_with_roles_labels_key_firewall_and_private_address(mocks, config):
    vms = build(config, managers=3, workers=2)

    def check(_):
        servers = mocks.of(SERVER)
        assert sorted(servers) == ["test-m0", "test-m1", "test-m2", "test-w1", "test-w2"]
        key_id = next(r for r in mocks.resources if r.typ == "hcloud:index/sshKey:SshKey")
        assert key_id.inputs["publicKey"] == PUBLIC_KEY
        firewall_id = [r for r in mocks.resources if r.typ == FIREWALL]
        assert len(firewall_id) == 1
        for name, inputs in servers.items():
            role = "manager" if "-m" in name else "worker"
            assert inputs["name"] == name
            assert inputs["labels"] == {"io.phoenix.project": "phoenix", "io.phoenix.stack": "test",
                                        "io.phoenix.role": role}
            assert (inputs["serverType"], inputs["image"], inputs["location"]) == ("cx32", "debian-12", "nbg1")
            assert len(inputs["sshKeys"]) == 1 and len(inputs["firewallIds"]) == 1
            assert inputs["publicNets"] == [{"ipv4Enabled": True, "ipv6Enabled": True}]
        assert servers["test-m2"]["networks"][0]["ip"] == "10.20.0.12"
        assert servers["test-w2"]["networks"][0]["ip"] == "10.20.0.101"
        assert [(n.name, n.role) for n in vms.nodes] == [("test-m0", "manager"), ("test-m1", "manager"),
                                                         ("test-m2", "manager"), ("test-w1", "worker"),
                                                         ("test-w2", "worker")]
    return all_ready(vms).apply(check)


@pulumi.runtime.test
def test_cloud_init_installs_docker_for_swarm(mocks, config):
    vms = build(config)

    def check(_):
        user_data = mocks.of(SERVER)["test-w1"]["userData"]
        assert user_data.startswith("#cloud-config\n")
        doc = yaml.safe_load(user_data)
        assert doc["packages"] == ["docker.io"]
        assert ["systemctl", "enable", "--now", "docker"] in doc["runcmd"]
    return all_ready(vms).apply(check)


def test_cloud_init_installs_containerd_and_its_companions_for_kubeadm():
    doc = yaml.safe_load(cloud_init(orchestrators.get("kubeadm").host_prerequisites))
    assert {"containerd", "runc", "containernetworking-plugins", "conntrack", "etcd-client"} <= set(doc["packages"])
    assert "runcmd" not in doc, "prepare.sh configures and starts containerd (its configuration is the orchestrator's)"


def test_cloud_init_installs_nothing_for_k3s():
    doc = yaml.safe_load(cloud_init(orchestrators.get("k3s").host_prerequisites))
    assert "packages" not in doc and "runcmd" not in doc


@pulumi.runtime.test
def test_nodes_use_private_addresses_between_them_and_public_ones_for_ssh(mocks, config):
    vms = build(config)

    def check(values):
        publics, docker_hosts = values[:3], values[3:6]
        assert [n.address for n in vms.nodes] == ["10.20.0.10", "10.20.0.100", "10.20.0.101"]
        assert publics == [server_ipv4("test-m0"), server_ipv4("test-w1"), server_ipv4("test-w2")]
        assert docker_hosts == [f"tcp://{publics[0]}:2376", None, None]
        prepares = {k: v for k, v in mocks.of(REMOTE).items() if "-prepare-" in k}
        assert sorted(prepares) == ["test-hosts-prepare-test-m0", "test-hosts-prepare-test-w1",
                                    "test-hosts-prepare-test-w2"]
        conn = unsecret(prepares["test-hosts-prepare-test-w2"]["connection"])[0]
        assert (conn["host"], conn["user"], conn["port"]) == (server_ipv4("test-w2"), "root", 22)
    return pulumi.Output.all(*[n.public_address for n in vms.nodes], *[n.docker_host for n in vms.nodes],
                             all_ready(vms)).apply(check)


def test_nodes_wait_for_their_server_and_every_prepare(mocks, config):
    vms = build(config)
    for node, server in zip(vms.nodes, vms.servers):
        assert len(node.ready) == 3 + 1  # the prepare commands and the manager's engine gateway
        assert node.replace_key is server.id


@pulumi.runtime.test
def test_swarm_joins_over_ssh_on_private_addresses(mocks, config):
    vms = build(config)
    swarm = Swarm("sw", {"nodes": vms.nodes})

    def check(_):
        remote = mocks.of(REMOTE)
        assert action(remote["sw-init"]) == ("init", ["10.20.0.10"])
        assert unsecret(remote["sw-init"]["connection"])[0]["host"] == server_ipv4("test-m0")
        join = remote["sw-join-test-w2"]
        assert action(join) == ("join", ["10.20.0.101", "10.20.0.10"])
        assert unsecret(join["connection"])[0]["host"] == server_ipv4("test-w2")
        assert unsecret(join["stdin"])[1]
    return pulumi.Output.all(*swarm.node_ids.values(), settled(swarm.provider)).apply(check)


@pulumi.runtime.test
def test_private_key_never_in_plain_inputs_or_outputs(mocks, config):
    vms = build(config)
    swarm = Swarm("sw", {"nodes": vms.nodes})

    def check(_):
        assert any("secret-key-material" in json.dumps(r.inputs) for r in mocks.resources)
        for r in mocks.resources:
            assert "secret-key-material" not in json.dumps(inputs_without_secrets(r.inputs)), r.name
        # The public key is what the cloud gets.
        assert all("PRIVATE" not in json.dumps(v) for v in mocks.of("hcloud:index/sshKey:SshKey").values())
    return pulumi.Output.all(*swarm.node_ids.values(), settled(swarm.provider)).apply(check)


def test_private_addresses_follow_the_container_offsets():
    assert private_addresses("10.0.0.0/16", 3, 2) == ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.100", "10.0.0.101"]


def test_cloud_needs_the_public_key(config):
    with pytest.raises(ConfigError, match="sshPublicKey"):
        config(substrate="cloud", sshPrivateKey="(secret)", cloud=json.dumps({}))


@pulumi.runtime.test
def test_servers_and_key_are_deleted_before_they_are_replaced(mocks, config):
    # Fixed names and private IPs: Hetzner refuses a second server with either while the old exists.
    vms = build(config, managers=1, workers=1)

    def check(_):
        assert {"test-m0", "test-w1", "test-key"} <= mocks.delete_first
    return all_ready(vms).apply(check)


@pulumi.runtime.test
def test_the_subnet_is_in_the_network_zone_of_the_location(mocks, config):
    vms = build(config, cloud={"location": "ash", "adminCidrs": ["198.51.100.0/24"]})

    def check(_):
        assert mocks.of("hcloud:index/networkSubnet:NetworkSubnet")["test-subnet"]["networkZone"] == "us-east"
    return all_ready(vms).apply(check)


@pytest.mark.parametrize("cloud, hint", [
    ({"location": "fra1", "adminCidrs": ["198.51.100.0/24"]}, "cloud.location = 'fra1' is invalid: a Hetzner Cloud location: fsn1 (eu-central)"),
    ({"location": "fsn1"}, "cloud.adminCidrs = None is invalid: a list of the CIDRs you administer from"),
    ({"adminCidrs": ["0.0.0.0/0"]}, "cloud.adminCidrs = '0.0.0.0/0' is invalid: the addresses you administer from"),
    ({"adminCidrs": ["198.51.100.0/24", "::/0"]}, "cloud.adminCidrs = '::/0' is invalid"),
])
def test_cloud_location_and_admin_cidrs_are_checked(config, cloud, hint):
    with pytest.raises(ConfigError, match=re.escape(hint)):
        config(substrate="cloud", sshPrivateKey="(secret)", sshPublicKey=PUBLIC_KEY, cloud=json.dumps(cloud))


def test_the_example_cloud_stack_makes_the_operator_set_admin_cidrs(config):
    stack = yaml.safe_load((Path(__file__).parents[2] / "stacks" / "Pulumi.cloud.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in stack.items() if k.startswith("phoenix:")}
    with pytest.raises(ConfigError, match=r"cloud.adminCidrs = None is invalid"):
        config(sshPrivateKey="(secret)", sshPublicKey=PUBLIC_KEY,
               **{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in raw.items()})

"""Nodes as Hetzner Cloud VMs (substrate `cloud`).

A private network and subnet (nodes talk over it, at fixed addresses: managers from .10, workers
from .100 of the subnet), one firewall for the public interfaces, the SSH public key, and one server
per node whose cloud-init user data prepares it (Debian's docker.io for swarm). Once the servers
exist they are SSH hosts: `SshHosts` prepares them (waits for cloud-init) and the orchestrator
bootstraps them over SSH at their public IPv4, advertising their private address.

Hetzner Cloud firewalls filter public interfaces only; traffic on the private network is not
filtered. The firewall therefore opens from outside only SSH (from the admin CIDRs), the entry port
(from anywhere) and the orchestrator's ports meant for admins (the k3s API on 6443); the
orchestrator's node-to-node ports are listed with the private network (or the servers' addresses) as
their only source, so they are closed publicly and the rule set states the whole policy (docs/vms.md).
"""
from __future__ import annotations

import ipaddress
from typing import Mapping, Optional, Sequence, TypedDict

import pulumi
import pulumi_hcloud as hcloud
import yaml

from components.config import HETZNER_NETWORK_ZONES, NodesConfig
from components.nodes.engine import ENGINE_PORT
from components.nodes.docker_nodes import MANAGER_OFFSET, WORKER_OFFSET, node_names
from components.nodes.node import MachineNeeds, Node
from components.nodes.registry import Registry
from components.nodes.ssh_hosts import HostSpec, SshHosts

ANYWHERE = ["0.0.0.0/0", "::/0"]


def subnet_of(network_cidr: str) -> ipaddress.IPv4Network:
    """The nodes' subnet: the first /24 of the network."""
    network = ipaddress.ip_network(network_cidr)
    if network.version != 4 or network.prefixlen > 24:
        raise ValueError(f"cloud.networkCidr {network_cidr} must be an IPv4 network of /24 or larger")
    return next(network.subnets(new_prefix=24))


def private_addresses(network_cidr: str, managers: int, workers: int) -> list[str]:
    """Fixed private address of each node, in node_names order (managers first)."""
    subnet = subnet_of(network_cidr)
    return [str(subnet[MANAGER_OFFSET + i]) for i in range(managers)] + \
        [str(subnet[WORKER_OFFSET + i]) for i in range(workers)]


# What cloud-init installs for each host prerequisite (scripts/prepare.sh checks it afterwards).
PREREQUISITE_PACKAGES = {
    "docker": (["docker.io"], [["systemctl", "enable", "--now", "docker"]]),
    # Configured and started by prepare.sh (containerd's configuration comes from the orchestrator).
    "kubeadm": (["containerd", "runc", "containernetworking-plugins", "conntrack", "socat", "iptables", "ethtool",
                 "etcd-client", "openssl"], []),
}


def cloud_init(prerequisites: Sequence[str]) -> str:
    """cloud-init user data: the node's prerequisites (scripts/prepare.sh checks them afterwards)."""
    doc: dict = {"package_update": bool(prerequisites)}
    for name in prerequisites:
        packages, commands = PREREQUISITE_PACKAGES[name]
        doc.setdefault("packages", []).extend(packages)
        if commands:
            doc.setdefault("runcmd", []).extend(commands)
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)


def firewall_rules(orchestrator: MachineNeeds, network_cidr: str, server_addresses: list[str],
                   admin_cidrs: list[str], published_port: int) -> list[hcloud.FirewallRuleArgs]:
    """Inbound rules: the public entry points, then the orchestrator's ports between nodes only."""
    def rule(protocol: str, port: str, sources: list[str], description: str) -> hcloud.FirewallRuleArgs:
        return hcloud.FirewallRuleArgs(direction="in", protocol=protocol, port=port, source_ips=sources,
                                       description=description)

    name = orchestrator.name
    rules = [rule("tcp", "22", admin_cidrs, "ssh from admins"),
             rule("tcp", str(published_port), ANYWHERE, "entry port")]
    rules += [rule(p.protocol, p.spec, admin_cidrs, f"{name} {p.purpose} from admins")
              for p in orchestrator.ports if p.admins]
    if "docker" in orchestrator.host_prerequisites:  # the Docker provider's way in (mutual TLS, managers)
        rules.append(rule("tcp", str(ENGINE_PORT), admin_cidrs, "docker engine gateway from admins"))
    sources = {"nodes": [network_cidr], "servers": [f"{a}/32" for a in server_addresses]}
    # `local` ports serve processes on the node itself: never opened.
    rules += [rule(p.protocol, p.spec, sources[p.between], f"{name} between {p.between}")
              for p in orchestrator.ports if p.between in sources]
    return rules


class CloudVmsArgs(TypedDict):
    config: NodesConfig
    """Node counts, `cloud` (location, server type, image, network, admin CIDRs) and the SSH public key."""
    orchestrator: MachineNeeds
    """Firewall ports and cloud-init packages (host prerequisites) of the orchestrator."""
    published_port: int
    """The entry port, opened to everyone."""
    private_key: pulumi.Input[str]
    """The SSH private key (secret) matching `config.ssh_public_key`."""
    labels: Mapping[str, str]
    """Labels put on every Hetzner resource (stack and project)."""


class CloudVms(pulumi.ComponentResource):
    """Hetzner Cloud servers on a private network, then prepared and bootstrapped as SSH hosts."""

    nodes: list[Node]
    registry: Optional[Registry]
    servers: list[hcloud.Server]

    def __init__(self, name: str, args: CloudVmsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:nodes:CloudVms", name, None, opts)
        cfg, orchestrator = args["config"], args["orchestrator"]
        cloud = cfg.cloud
        if cloud is None or not cfg.ssh_public_key:
            raise ValueError("substrate cloud needs phoenix:cloud and phoenix:sshPublicKey")
        child = pulumi.ResourceOptions(parent=self)
        labels = dict(args["labels"])
        names = node_names(name, cfg.managers, cfg.workers)
        addresses = private_addresses(cloud.network_cidr, cfg.managers, cfg.workers)

        network = hcloud.Network(f"{name}-net", name=f"phoenix-{name}", ip_range=cloud.network_cidr,
                                 labels=labels, opts=child)
        network_id = network.id.apply(int)
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet", network_id=network_id, type="cloud",
            network_zone=HETZNER_NETWORK_ZONES[cloud.location],
            ip_range=str(subnet_of(cloud.network_cidr)), opts=child)
        firewall = hcloud.Firewall(
            f"{name}-firewall", name=f"phoenix-{name}", labels=labels,
            rules=firewall_rules(orchestrator, cloud.network_cidr,
                                 [a for (_, role), a in zip(names, addresses) if role == "manager"],
                                 list(cloud.admin_cidrs), args["published_port"]),
            opts=child)
        # Hetzner names are unique per project and these names are fixed (and each server's private
        # IP too): a replacement must delete the old one first, or the new one is refused.
        delete_first = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        key = hcloud.SshKey(f"{name}-key", name=f"phoenix-{name}", public_key=cfg.ssh_public_key,
                            labels=labels, opts=delete_first)

        user_data = cloud_init(orchestrator.host_prerequisites)
        self.servers, hosts = [], []
        for (node_name, role), address in zip(names, addresses):
            server = hcloud.Server(
                node_name, name=node_name, server_type=cloud.server_type, image=cloud.image,
                location=cloud.location, ssh_keys=[key.id], firewall_ids=[firewall.id.apply(int)],
                networks=[hcloud.ServerNetworkArgs(network_id=network_id, ip=address)],
                public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv6_enabled=True)],
                user_data=user_data, labels={**labels, "io.phoenix.role": role},
                opts=pulumi.ResourceOptions.merge(delete_first, pulumi.ResourceOptions(depends_on=[subnet])))
            self.servers.append(server)
            hosts.append(HostSpec(name=node_name, role=role, address=server.ipv4_address, port=22, user="root",
                                  node_address=address, ready=[server], replace_key=server.id))

        ssh = SshHosts(f"{name}-hosts", {"hosts": hosts, "orchestrator": orchestrator,
                                         "private_key": args["private_key"]}, child)
        self.nodes = ssh.nodes
        self.registry = None
        self.network_id = network.id
        self.register_outputs({
            "nodes": [{"name": n.name, "role": n.role, "address": n.address,
                       "publicAddress": n.public_address} for n in self.nodes],
            "network": network.id,
        })

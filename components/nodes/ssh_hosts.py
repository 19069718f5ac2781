"""Nodes as existing machines reached over SSH (substrate `ssh`, and cloud VMs once they exist).

Each host becomes a `Node` whose Connection is `Ssh`: the orchestrator's bootstrap script runs there
as pulumi-command remote commands, with the private key from the secret `phoenix:sshPrivateKey`.
Every SSH connection accepts only the host's key: `hostKey` from the config, or the key recorded in
the stack's state at first contact (scripts/hostkey.sh, never read again); a host presenting
another key fails the run. Before anything else, a `prepare` command runs on every host
(scripts/prepare.sh): it installs the orchestrator's host prerequisites (the Docker Engine for
swarm) where they are missing. Where the hosts run a Docker Engine, every manager then gets the
engine gateway (components/nodes/engine.py): the Docker provider's mutual-TLS way in. Every node's
`ready` holds ALL the prepare and gateway commands, so one unreachable or broken host fails `pulumi
up` before any host inits or joins a cluster: nothing is left half-joined. There is no registry:
app images are streamed to each host
(`docker save | ssh ... docker load`, Connection.pipe).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, TypedDict, Union

import pulumi
from pulumi_command import local

from components.config import SshHost
from components.nodes.engine import client_tls, engine_ca, engine_gateway, engine_url
from components.nodes.node import MachineNeeds, Node, Ssh, script_argv
from components.nodes.registry import Registry

PREPARE_SCRIPT = (Path(__file__).parent / "scripts" / "prepare.sh").read_text()
HOSTKEY_SCRIPT = (Path(__file__).parent / "scripts" / "hostkey.sh").read_text()


def prepare_argv(host: str, prerequisites: Sequence[str]) -> list[str]:
    """argv that installs a host's `prerequisites` (MachineNeeds.host_prerequisites; scripts/prepare.sh)."""
    return script_argv(PREPARE_SCRIPT, "prepare", host, *prerequisites)


def recorded_host_key(name: str, host: "HostSpec", opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The host's SSH key as first seen, kept in the stack's state (scripts/hostkey.sh).

    Scanned once: only a new address or port, or a replaced machine, scans again. A changed
    script text does not (the key must not be re-read from whatever answers now).
    """
    scan = local.Command(
        name,
        create=pulumi.Output.from_input(host.address).apply(
            lambda address: shlex.join(script_argv(HOSTKEY_SCRIPT, "hostkey", host.name, address, str(host.port)))),
        triggers=[host.address, host.port, *([host.replace_key] if host.replace_key is not None else [])],
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(ignore_changes=["create"], depends_on=list(host.ready)),
                                          opts))
    return scan.stdout.apply(str.strip)


@dataclass(frozen=True)
class HostSpec:
    """A machine to use as a node: where SSH reaches it, and where the other nodes do."""

    name: str
    role: str
    address: pulumi.Input[str]
    """Where SSH (and users, for published ports) reach the host."""
    port: int = 22
    user: str = "root"
    host_key: str = ""
    """The host's SSH public key ("TYPE BASE64"); empty: recorded at first contact."""
    node_address: Optional[pulumi.Input[str]] = None
    """Where the other nodes reach it (a private network address); None: `address`."""
    ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """Resources that must exist before the host can be reached (e.g. the VM)."""
    replace_key: Optional[pulumi.Input[str]] = None
    """Changes when the machine is replaced (a VM's id): preparation and bootstrap re-run then."""

    @staticmethod
    def of(host: SshHost) -> "HostSpec":
        return HostSpec(name=host.name, role=host.role, address=host.address, port=host.port, user=host.user,
                        host_key=host.host_key)


class SshHostsArgs(TypedDict):
    hosts: Sequence[Union[HostSpec, SshHost]]
    """The machines, in any order (nodes come out managers first); names are unique."""
    orchestrator: MachineNeeds
    """The orchestrator's host prerequisites: what scripts/prepare.sh installs."""
    private_key: pulumi.Input[str]
    """The SSH private key (a secret Output, config.ssh_private_key())."""


class SshHosts(pulumi.ComponentResource):
    """Existing machines as nodes, each prepared for the orchestrator before anything joins."""

    nodes: list[Node]
    registry: Optional[Registry]
    prepared: dict[str, pulumi.CustomResource]

    def __init__(self, name: str, args: SshHostsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:nodes:SshHosts", name, None, opts)
        specs = [h if isinstance(h, HostSpec) else HostSpec.of(h) for h in args["hosts"]]
        if not any(h.role == "manager" for h in specs):
            raise ValueError("SSH hosts need at least one host with role manager")
        specs.sort(key=lambda h: h.role != "manager")  # stable: managers first, config order kept
        private_key = pulumi.Output.secret(args["private_key"])

        child = pulumi.ResourceOptions(parent=self)
        connections = {h.name: Ssh(host=h.address, user=h.user, port=h.port, private_key=private_key,
                                   host_key=h.host_key or recorded_host_key(f"{name}-hostkey-{h.name}", h, child))
                       for h in specs}
        self.prepared = {}
        for h in specs:
            # The first command on each host: reachability (dial_error_limit=3, per_dial_timeout=10 on
            # the connection) and prerequisites; its error names the host and the reason.
            self.prepared[h.name] = connections[h.name].command(
                f"{name}-prepare-{h.name}", prepare_argv(h.name, args["orchestrator"].host_prerequisites),
                stdin=args["orchestrator"].prepare_input or None,
                triggers=[h.replace_key] if h.replace_key is not None else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(h.ready)))
        prepared = list(self.prepared.values())

        # Hosts with a Docker Engine: the Docker provider reaches a manager's over mutual TLS.
        engine = "docker" in args["orchestrator"].host_prerequisites
        managers = [h for h in specs if h.role == "manager"] if engine else []
        ca = engine_ca(f"{name}-engine-ca", child) if managers else None
        tls = client_tls(ca) if ca is not None else None
        self.gateways = {h.name: engine_gateway(
            f"{name}-engine-{h.name}", connections[h.name], h.address, ca,
            [h.replace_key] if h.replace_key is not None else [], pulumi.ResourceOptions(
                parent=self, depends_on=[self.prepared[h.name]])) for h in managers}

        self.nodes = [Node(
            name=h.name, role=h.role,
            address=h.node_address if h.node_address is not None else h.address,
            connection=connections[h.name],
            docker_host=engine_url(h.address) if h.name in self.gateways else None,
            docker_tls=tls if h.name in self.gateways else None,
            public_address=h.address,
            ready=[*prepared, *self.gateways.values()],
            replace_key=h.replace_key) for h in specs]
        self.registry = None
        self.register_outputs({
            "nodes": [{"name": n.name, "role": n.role, "address": n.address} for n in self.nodes],
        })


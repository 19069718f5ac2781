"""Nodes as containers on the local Docker engine (the dev substrate).

One bridge network with a fixed subnet, one container per node at a fixed address (restarts keep
addresses), a named volume for the node's data directory (a real storage driver, survives restarts),
and a registry container the nodes pull app images from. Each node's host-shared directory (under
`socketDir`) is where the node exposes its Docker socket or kubeconfig to the Pulumi host, so that
no unauthenticated TCP API is ever opened.
"""
from __future__ import annotations

import ipaddress
import os
import shlex
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence, TypedDict

import pulumi
import pulumi_docker as docker
from pulumi_command import local

from components.config import NodesConfig
from components.nodes.node import DockerExec, Node
from components.nodes.registry import Registry

SHARED_DIR = "/phoenix"
"""Where the host-shared directory is mounted inside each node container."""
REGISTRY_OFFSET, MANAGER_OFFSET, WORKER_OFFSET = 2, 10, 100


@dataclass(frozen=True)
class NodeContext:
    """What an orchestrator may use to build a container node's command and files."""

    name: str
    role: str
    address: str
    registry: str
    """`host:port` of the stack's registry as nodes reach it."""
    socket_gid: int
    """Group of the host's Docker socket: node sockets get the same group, so the same users reach them."""
    first_manager: str
    """Address of the first manager: where the other nodes join the cluster."""


@dataclass(frozen=True)
class NodeRuntime:
    """What an orchestrator needs a container node to run: given by the orchestrator, used here."""

    command: Callable[[NodeContext], list[str]]
    data_dir: str
    """The directory kept on a named volume (/var/lib/docker, /var/lib/rancher/k3s)."""
    ports: Sequence[tuple[int, int]] = ()
    """(host port, container port) pairs published by the first manager on the bind address."""
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    files: Callable[[NodeContext], Mapping[str, str]] = lambda ctx: {}
    """Files written into the container at creation (path -> content)."""
    start_after: Callable[[NodeContext, Sequence[Node]], Sequence[pulumi.Resource]] = lambda ctx, earlier: ()
    """What a node's container must wait for, given the nodes made before it (e.g. a joining k3s server
    starts only once the previous server is a Ready member)."""


class DockerNodesArgs(TypedDict):
    config: NodesConfig
    """Node counts, image, resources and privileges (validated)."""
    runtime: NodeRuntime
    """What the orchestrator runs on each node."""
    bind_address: str
    """Host address on which published ports are bound (127.0.0.1 keeps them local)."""
    labels: Mapping[str, str]
    """Labels put on every container, network and volume (stack and project)."""


def node_names(stack: str, managers: int, workers: int) -> list[tuple[str, str]]:
    """(name, role) of each node, managers first: `<stack>-m0`, ..., `<stack>-w1`, ..."""
    return [(f"{stack}-m{i}", "manager") for i in range(managers)] + \
        [(f"{stack}-w{i}", "worker") for i in range(1, workers + 1)]


def host_socket_gid(path: str = "/var/run/docker.sock") -> int:
    try:
        return os.stat(path).st_gid
    except OSError:
        return 0


class DockerNodes(pulumi.ComponentResource):
    """Manager and worker nodes as containers, plus the registry they pull app images from."""

    nodes: list[Node]
    registry: Registry

    def __init__(self, name: str, args: DockerNodesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:nodes:DockerNodes", name, None, opts)
        cfg, runtime = args["config"], args["runtime"]
        child = pulumi.ResourceOptions(parent=self)
        # Containers, volumes and networks carry fixed names: a replacement must free the name first.
        named = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        labels = dict(args["labels"])

        def label_args(cls, extra: Mapping[str, str] = {}):
            return [cls(label=k, value=v) for k, v in {**labels, **extra}.items()]

        subnet = ipaddress.ip_network(cfg.subnet)
        network = docker.Network(
            f"{name}-net", name=f"phoenix-{name}", driver="bridge",
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=cfg.subnet, gateway=str(subnet[1]))],
            labels=label_args(docker.NetworkLabelArgs), opts=named)

        def fixed(offset: int) -> str:
            return str(subnet[offset])

        # The registry: app images are pushed to it from the host (127.0.0.1 is trusted by Docker
        # without TLS) and pulled by nodes over the node network.
        registry_image = docker.RemoteImage(f"{name}-registry-image", name=cfg.registry_image,
                                            keep_locally=True, opts=child)
        registry_volume = docker.Volume(f"{name}-registry-data", name=f"phoenix-{name}-registry",
                                        labels=label_args(docker.VolumeLabelArgs), opts=named)
        registry_container = docker.Container(
            f"{name}-registry", name=f"phoenix-{name}-registry", image=registry_image.image_id,
            restart="unless-stopped",
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, ipv4_address=fixed(REGISTRY_OFFSET))],
            ports=[docker.ContainerPortArgs(internal=5000, external=cfg.registry_port, ip="127.0.0.1")],
            volumes=[docker.ContainerVolumeArgs(volume_name=registry_volume.name, container_path="/var/lib/registry")],
            labels=label_args(docker.ContainerLabelArgs, {"io.phoenix.role": "registry"}), opts=named)
        self.registry = Registry(push=f"127.0.0.1:{cfg.registry_port}", pull=f"{fixed(REGISTRY_OFFSET)}:5000",
                                 ready=[registry_container])

        node_image = docker.RemoteImage(f"{name}-node-image", name=cfg.image, keep_locally=True, opts=child)
        gid = host_socket_gid()
        self.nodes = []
        manager_index = worker_index = 0
        for node_name, role in node_names(name, cfg.managers, cfg.workers):
            if role == "manager":
                address, manager_index = fixed(MANAGER_OFFSET + manager_index), manager_index + 1
            else:
                address, worker_index = fixed(WORKER_OFFSET + worker_index), worker_index + 1
            ctx = NodeContext(node_name, role, address, self.registry.pull, gid, fixed(MANAGER_OFFSET))
            first = not self.nodes
            volume = docker.Volume(f"{node_name}-data", name=f"phoenix-{node_name}",
                                   labels=label_args(docker.VolumeLabelArgs), opts=named)
            shared = os.path.join(cfg.socket_dir, node_name)
            # The host directory exists exactly as long as the node: made before the container, removed
            # after it (the node's socket stays in it), and socketDir with it once it is empty.
            shared_dir = local.Command(
                f"{node_name}-shared", create=f"mkdir -p {shlex.quote(shared)}",
                delete=f"rm -rf {shlex.quote(shared)} && {{ rmdir {shlex.quote(cfg.socket_dir)} 2>/dev/null || true; }}",
                opts=child)
            container = docker.Container(
                node_name,
                name=node_name,
                hostname=node_name,
                image=node_image.image_id,
                command=runtime.command(ctx) or None,
                envs=[f"{k}={v}" for k, v in runtime.env.items()] or None,
                restart="unless-stopped",
                **self._privileges(cfg),
                tmpfs={"/run": "rw", "/var/run": "rw"},
                cpus=str(cfg.milli_cpus / 1000) if cfg.milli_cpus else None,
                memory=cfg.memory_mb or None,
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, ipv4_address=address)],
                ports=[docker.ContainerPortArgs(internal=c, external=h, ip=args["bind_address"])
                       for h, c in runtime.ports] if first else None,
                volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=runtime.data_dir),
                         docker.ContainerVolumeArgs(host_path=shared, container_path=SHARED_DIR)],
                uploads=[docker.ContainerUploadArgs(file=path, content=content)
                         for path, content in runtime.files(ctx).items()] or None,
                labels=label_args(docker.ContainerLabelArgs, {"io.phoenix.role": role}),
                opts=pulumi.ResourceOptions.merge(named, pulumi.ResourceOptions(
                    depends_on=[registry_container, shared_dir, *runtime.start_after(ctx, self.nodes)])))
            self.nodes.append(Node(
                name=node_name, role=role, address=address, connection=DockerExec(node_name, container.id),
                docker_host=f"unix://{shared}/docker.sock", public_address="127.0.0.1"
                if args["bind_address"] == "0.0.0.0" else args["bind_address"],
                ready=[container], replace_key=container.id))

        self.network_name = network.name
        self.register_outputs({
            "nodes": [{"name": n.name, "role": n.role, "address": n.address} for n in self.nodes],
            "registry": self.registry.push,
            "network": network.name,
        })

    @staticmethod
    def _privileges(cfg: NodesConfig) -> dict:
        if cfg.privileged:
            return {"privileged": True}
        # What a host that refuses --privileged still allows (see README, "Hosts without --privileged").
        # Capabilities as Docker stores and the provider reads them back (CAP_ prefixed, ALL as is), so
        # that a refresh finds no difference.
        return {
            "capabilities": docker.ContainerCapabilitiesArgs(adds=["ALL"], drops=[f"CAP_{c}" for c in cfg.cap_drop]),
            "security_opts": ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"],
            "cgroupns_mode": "host",
            "mounts": [docker.ContainerMountArgs(target="/sys/fs/cgroup", source="/sys/fs/cgroup", type="bind")],
        }

"""Docker Swarm on any node set.

The first manager inits the swarm; the join tokens read from it are secrets; further managers and
the workers join with them. Every node then gets a membership record on the first manager: creating
it labels the node, deleting it (the node left the config) drains the node and removes it from the
swarm before its machine goes away. All steps are actions of scripts/swarm.sh, run through each
node's Connection, so the same code runs over `docker exec` and over SSH.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_docker as docker

from components.apps.app_image import ImageLoader
from components.apps.phoenix import swarm_phoenix
from components.apps.spec import ServiceSpec
from components.apps.swarm_app import SwarmApp
from components.config import ClusterConfig, split_image
from components.nodes.docker_nodes import SHARED_DIR, NodeRuntime
from components.nodes.node import Node, Port, script_argv
from components.orchestrators.orchestrator import Complaint, Deployment, Orchestrator

SCRIPT = (Path(__file__).parent / "scripts" / "swarm.sh").read_text()


def swarm_argv(*args: str) -> list[str]:
    """argv that runs one action of the Swarm bootstrap script on a node."""
    return script_argv(SCRIPT, "swarm", *args)


LOADER = ImageLoader(
    load=lambda name: swarm_argv("load"),
    check=lambda ref: swarm_argv("has-image", ref),
    remove=lambda ref: swarm_argv("remove-image", ref),
)
"""Without a registry: `docker load` on each node; services name the image by its ID, never pulled."""


def dockerd_command(shared_dir: str, registry: str, socket_gid: int) -> list[str]:
    """The node container's command: dockerd with its socket also in the host-shared directory.

    A leading `dockerd` is what the official docker:dind entrypoint expects to pass through without
    adding its TCP listener; the air-gapped node image runs it directly.
    """
    return ["dockerd", "--host=unix:///var/run/docker.sock", f"--host=unix://{shared_dir}/docker.sock",
            f"--group={socket_gid}", f"--insecure-registry={registry}"]


class SwarmArgs(TypedDict):
    nodes: Sequence[Node]
    """The cluster's nodes, managers first; the first manager inits the swarm."""
    image: NotRequired[pulumi.Input[str]]
    """An image every node pulls while the swarm forms, so that services need not wait for pulls."""


class Swarm(pulumi.ComponentResource):
    """A Docker Swarm formed on `nodes`; `provider` deploys services through the first manager."""

    provider: docker.Provider
    manager_address: pulumi.Input[str]
    worker_token: pulumi.Output[str]
    manager_token: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:orchestrators:Swarm", name, None, opts)
        nodes = list(args["nodes"])
        managers = [n for n in nodes if n.role == "manager"]
        if not managers:
            raise ValueError("a swarm needs at least one manager node")
        leader = managers[0]

        init = leader.run(f"{name}-init", swarm_argv("init", leader.address), parent=self,
                          delete=swarm_argv("leave"))
        tokens = leader.run(f"{name}-tokens", swarm_argv("tokens"), parent=self, depends_on=[init],
                            triggers=[init.stdout], secret_stdout=True)
        parsed = tokens.stdout.apply(json.loads)
        self.worker_token = pulumi.Output.secret(parsed["worker"])
        self.manager_token = pulumi.Output.secret(parsed["manager"])

        node_ids: dict[str, pulumi.Output[str]] = {leader.name: init.stdout.apply(str.strip)}
        members = []
        previous_manager: list[pulumi.Resource] = []
        for node in nodes:
            joined = []
            if node is not leader:
                token = self.manager_token if node.role == "manager" else self.worker_token
                join = node.run(f"{name}-join-{node.name}", swarm_argv("join", node.address, leader.address),
                                parent=self, stdin=token.apply(lambda t: t + "\n"), delete=swarm_argv("leave"),
                                depends_on=[init], triggers=[init.stdout])
                node_ids[node.name] = join.stdout.apply(str.strip)
                joined = [join]
            # Runs on the leader: labels the node now, drains and removes it when it leaves the config.
            # Each manager's record depends on the previous manager's, so that managers leaving together
            # are removed one after the other (deletes run in reverse): the quorum check of each removal
            # must see the previous one finished, not a manager halfway through its demotion.
            member = leader.run(
                f"{name}-member-{node.name}",
                node_ids[node.name].apply(lambda i, n=node: swarm_argv(
                    "label", i, f"phoenix.node={n.name}", f"phoenix.role={n.role}")),
                parent=self, depends_on=[*joined, *(previous_manager if node.role == "manager" else [])],
                delete=node_ids[node.name].apply(lambda i: swarm_argv("remove", i)) if node is not leader else None)
            members.append(member)
            if node.role == "manager":
                previous_manager = [member]

        pulls = [node.run(f"{name}-pull-{node.name}",
                          pulumi.Output.from_input(args["image"]).apply(lambda ref: swarm_argv("pull", ref)),
                          parent=self) for node in nodes] if "image" in args else []

        self.manager_address = leader.address
        # The host becomes known only once the swarm exists, so no resource talks to the manager before.
        if leader.docker_host is None:
            raise ValueError(f"the first manager {leader.name} offers no way to its Docker engine (Node.docker_host)")
        tls = leader.docker_tls
        # Not a secret, though init's stdout is (every output of a command holding the SSH key is).
        self.docker_host = pulumi.Output.unsecret(pulumi.Output.all(init.stdout, leader.docker_host).apply(lambda v: v[1]))
        self.provider = docker.Provider(
            f"{name}-manager", host=self.docker_host,
            # Mutual TLS (SSH hosts): the engine's certificate is checked against ca_material.
            ca_material=tls.ca if tls else None, cert_material=tls.cert if tls else None,
            key_material=pulumi.Output.secret(tls.key) if tls else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*members, *pulls]))
        self.node_ids = node_ids
        self.register_outputs({
            "managerAddress": self.manager_address,
            "dockerHost": self.docker_host,
            "nodeIds": node_ids,
            "workerToken": self.worker_token,
            "managerToken": self.manager_token,
        })


class SwarmOrchestrator(Orchestrator):
    """Docker Swarm: dockerd on every node, services deployed through the first manager's engine."""

    name = "swarm"
    default_node_image = "docker:27-dind"
    ports = (Port("tcp", 2377, purpose="cluster management"), Port("tcp", 7946, purpose="gossip"),
             Port("udp", 7946, purpose="gossip"), Port("udp", 4789, purpose="overlay VXLAN"))
    host_prerequisites = ("docker",)
    image_loader = LOADER
    config_keys = ("endpointMode",)

    def validate(self, cfg: ClusterConfig, bad: Complaint) -> ClusterConfig:
        if "k3s" in split_image(cfg.nodes.image)[0]:
            bad("nodeImage", cfg.nodes.image, f"a docker-in-docker image such as {self.default_node_image} "
                "for orchestrator swarm")
        return cfg

    def container_runtime(self, cfg: ClusterConfig, opts: Optional[pulumi.ResourceOptions] = None) -> NodeRuntime:
        """What a Swarm node container runs: dockerd, with the entry port published by the first manager.

        `opts` is unused: Swarm needs no resource before its nodes exist (k3s creates its token there).
        """
        return NodeRuntime(
            command=lambda ctx: dockerd_command(SHARED_DIR, ctx.registry, ctx.socket_gid),
            data_dir="/var/lib/docker",
            ports=[(cfg.app.published_port, cfg.app.published_port)],
        )

    def deploy(self, name: str, cfg: ClusterConfig, nodes: Sequence[Node], services: Sequence[ServiceSpec],
               image: pulumi.Input[str], opts: pulumi.ResourceOptions) -> Deployment:
        """A swarm on `nodes` and the app's services on it, through the first manager."""
        swarm = Swarm(f"{name}-swarm", {"nodes": nodes, "image": image}, opts)
        app_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=swarm.provider))
        app = SwarmApp(f"{name}-app", {"services": services, "image": image, "app": cfg.app, "labels": cfg.labels}, app_opts)
        swarm_phoenix(f"{name}-phoenix", cfg.app, image, cfg.labels, app_opts)  # nothing when phoenix mode is off
        tls = nodes[0].docker_tls
        # The client's side of the engine's mutual TLS (hosts), for `make context`.
        tls_secret = {"dockerTls": pulumi.Output.json_dumps({"ca": tls.ca, "cert": tls.cert, "key": tls.key})} if tls else {}
        return Deployment(manager_address=swarm.manager_address,
                          secrets={"swarmWorkerToken": swarm.worker_token, "swarmManagerToken": swarm.manager_token,
                                   **tls_secret},
                          # The first manager's engine as a docker CLI reaches it: `make context`.
                          outputs={"dockerHost": swarm.docker_host}, app=[app])


ORCHESTRATOR = SwarmOrchestrator()

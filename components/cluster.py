"""A whole cluster: nodes from a substrate, an orchestrator on them, the sample app on top."""
from __future__ import annotations

from typing import Optional, TypedDict

import pulumi

from components import orchestrators
from components.apps.app_image import AppImage
from components.apps.ready import AppReady
from components.apps.spec import sample_services
from components.config import ClusterConfig
from components.nodes.docker_nodes import DockerNodes

READY_TIMEOUT_S = 180
"""How long `pulumi up` waits for the entry URL to answer once the app's services exist."""


class ClusterArgs(TypedDict):
    config: ClusterConfig
    """The validated stack configuration (components.config.load())."""


class Cluster(pulumi.ComponentResource):
    """Nodes, orchestrator and sample app for one stack."""

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:index:Cluster", name, None, opts)
        cfg = args["config"]
        child = pulumi.ResourceOptions(parent=self)
        services = sample_services(cfg.app)

        orchestrator = orchestrators.get(cfg.orchestrator)

        if cfg.substrate == "docker":
            nodes = DockerNodes(cfg.stack, {
                "config": cfg.nodes, "runtime": orchestrator.container_runtime(cfg, child),
                "bind_address": cfg.app.bind_address, "labels": cfg.labels}, child)
        else:
            from components.nodes.hosts import host_nodes
            nodes = host_nodes(cfg, orchestrator, child)
        self.nodes = nodes.nodes

        image = AppImage(f"{name}-image", {
            "base_image": cfg.app.base_image, "registry": nodes.registry, "nodes": nodes.nodes,
            "loader": orchestrator.image_loader}, child)
        deployed = orchestrator.deploy(name, cfg, nodes.nodes, services, image.ref, child)

        self.manager_address = deployed.manager_address
        self.app_url = pulumi.Output.concat(
            "http://", nodes.nodes[0].public_address, ":", str(cfg.app.published_port), "/")
        # `pulumi up` ends when the entry answers from web and api, not merely when the services exist.
        self.app_ready = AppReady(f"{name}-ready", {
            "url": self.app_url, "version": cfg.app.version, "after": deployed.app, "timeout_s": READY_TIMEOUT_S,
            "triggers": [image.ref, *(str(n) for n in cfg.app.replicas.values()), cfg.app.endpoint_mode]}, child)
        self.secrets = deployed.secrets
        self.outputs = deployed.outputs
        self.register_outputs({
            "managerAddress": self.manager_address,
            "appUrl": self.app_url,
            "nodes": [{"name": n.name, "role": n.role, "address": n.address} for n in nodes.nodes],
        })

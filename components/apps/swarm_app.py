"""The sample microservices rendered to Docker Swarm services.

Every service gets the definition's replicas, health check (liveness), restart policy, rolling
update (start-first, roll back on failure, monitor window), rollback policy, limits, the app's
overlay network and a spread over nodes. The entry is published in one of two ways:
- endpoint mode `vip`: the web service is published on the routing mesh (needs IPVS in the kernel);
- endpoint mode `dnsrr`: services are reached by DNS round robin, and an `edge` service on the
  managers publishes the entry port in host mode and proxies to web (works without IPVS).
"""
from __future__ import annotations

import platform
from typing import Mapping, Optional, Sequence, TypedDict

import pulumi
import pulumi_docker as docker

from components.apps.spec import ServiceSpec, service_spec
from components.config import AppConfig

EDGE_PORT = 8000
# `uname -m` -> the architecture names of image platforms.
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def image_platforms(image: pulumi.Input[str]) -> pulumi.Output[list]:
    """The platforms Swarm records in a service whose image it resolves in a registry (a reference
    pinned by digest): the image's. Sent as Swarm reads them back, so that a refresh finds no change.
    Such an image was built by the Pulumi host's own engine (container nodes), so it has the host's
    platform; an image loaded onto the nodes (no registry) gets none recorded.
    """
    arch = ARCHITECTURES.get(platform.machine(), platform.machine())
    return pulumi.Output.from_input(image).apply(lambda ref: [docker.ServiceTaskSpecPlacementPlatformArgs(
        architecture=arch, os="linux")] if "@sha256:" in ref else [])


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _healthcheck(s: ServiceSpec) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    # Docker has one health check: it gates rollouts and restarts unhealthy tasks, i.e. liveness.
    return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
        tests=["CMD", *s.probe_command], interval=_duration(s.liveness.period_s),
        timeout=_duration(s.liveness.timeout_s), retries=s.liveness.failures,
        start_period=_duration(s.liveness.start_grace_s))


def edge_service(app: AppConfig, entry: ServiceSpec) -> ServiceSpec:
    """The dnsrr-mode front door: proxies the entry port to the entry service by DNS round robin."""
    return service_spec("edge", EDGE_PORT, 1, {"UPSTREAM": f"{entry.name}:{entry.port}", "APP_VERSION": app.version})


class SwarmAppArgs(TypedDict):
    services: Sequence[ServiceSpec]
    """The app definition (spec.sample_services)."""
    image: pulumi.Input[str]
    """The sample app image as nodes see it."""
    app: AppConfig
    """Published port and endpoint mode."""
    labels: Mapping[str, str]


class SwarmApp(pulumi.ComponentResource):
    """The app's overlay network and one Swarm service per definition (plus `edge` in dnsrr mode)."""

    def __init__(self, name: str, args: SwarmAppArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:apps:SwarmApp", name, None, opts)
        # Children inherit the component's provider (the Swarm manager) through their parent. Services
        # and networks have fixed names in the swarm: a replacement must free the name first.
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        app, labels = args["app"], args["labels"]
        network = docker.Network(
            f"{name}-net", name=f"{name}-app", driver="overlay", attachable=True,
            labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in labels.items()], opts=child)
        entry = next(s for s in args["services"] if s.entry)
        dnsrr = app.endpoint_mode == "dnsrr"

        self.services: dict[str, docker.Service] = {}
        for spec in args["services"]:
            ports = [] if dnsrr or not spec.entry else [docker.ServiceEndpointSpecPortArgs(
                target_port=spec.port, published_port=app.published_port, publish_mode="ingress")]
            self.services[spec.name] = self._service(name, spec, args["image"], network, app.endpoint_mode,
                                                     ports, labels, child)
        if dnsrr:
            edge = edge_service(app, entry)
            self.services["edge"] = self._service(
                name, edge, args["image"], network, "dnsrr",
                [docker.ServiceEndpointSpecPortArgs(target_port=edge.port, published_port=app.published_port,
                                                    publish_mode="host")],
                labels, pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.services[entry.name]])),
                global_on_managers=True)

        self.network_name = network.name
        self.register_outputs({"services": {k: v.name for k, v in self.services.items()}})

    @staticmethod
    def _service(prefix: str, s: ServiceSpec, image: pulumi.Input[str], network: docker.Network,
                 endpoint_mode: str, ports: list, labels: Mapping[str, str], opts: pulumi.ResourceOptions,
                 global_on_managers: bool = False) -> docker.Service:
        u = s.update
        # A host-mode port is held by the running task: its replacement can only start after it stops.
        order = "stop-first" if any(p.publish_mode == "host" for p in ports) else "start-first"
        mode = docker.ServiceModeArgs(global_=True) if global_on_managers else \
            docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=s.replicas))
        return docker.Service(
            f"{prefix}-{s.name}",
            name=s.name,
            labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in {**labels, "io.phoenix.service": s.name}.items()],
            mode=mode,
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=image,
                    commands=s.command,
                    # Swarm fills in the node's hostname per task: the app shows which node answered.
                    env={**s.env, "NODE_NAME": "{{.Node.Hostname}}"},
                    healthcheck=_healthcheck(s),
                    stop_grace_period=_duration(s.stop_grace_s),
                ),
                networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id)],
                placement=docker.ServiceTaskSpecPlacementArgs(
                    platforms=image_platforms(image),
                    constraints=["node.role==manager"] if global_on_managers else [],
                    prefs=["spread=node.labels.phoenix.node"]),
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                        nano_cpus=s.resources.cpu_millis * 1_000_000,
                        memory_bytes=s.resources.memory_mb * 1024 * 1024),
                    reservation=docker.ServiceTaskSpecResourcesReservationArgs(
                        nano_cpus=s.resources.request_cpu_millis * 1_000_000,
                        memory_bytes=s.resources.request_memory_mb * 1024 * 1024)),
                # A killed or crashed task is replaced after half a second (Swarm's default: 5 s); about
                # half of the time until its replacement is healthy is the first health check, `interval`
                # after the start. Not zero: a container that crashes at once would be restarted in a
                # busy loop.
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                    condition="any", delay="500ms", max_attempts=0, window="10s"),
            ),
            update_config=docker.ServiceUpdateConfigArgs(
                parallelism=u.parallelism, delay=_duration(u.delay_s), failure_action="rollback",
                monitor=_duration(u.monitor_s), max_failure_ratio=str(u.max_failure_ratio), order=order),
            rollback_config=docker.ServiceRollbackConfigArgs(
                parallelism=u.parallelism, delay="0s", failure_action="pause",
                monitor=_duration(u.monitor_s), max_failure_ratio=str(u.max_failure_ratio), order=order),
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode=endpoint_mode, ports=ports or None),
            # `pulumi up` returns once every replica runs, so the stack's outputs mean a working app.
            # (The provider cannot wait for global services: their task count follows the nodes.)
            converge_config=None if global_on_managers else docker.ServiceConvergeConfigArgs(
                delay="1s", timeout=_duration(u.rollout_timeout_s)),
            opts=opts)

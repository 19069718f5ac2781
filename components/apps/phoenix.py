"""Phoenix mode rendered for each orchestrator, from the stack config (phoenix, phoenixInterval,
phoenixServices): the cluster replaces one running container of each chosen service on a schedule.

The controller is one module of the sample app image, `sampleapp.phoenix` (standard library only); its
docstring explains how it replaces a container without going below the desired healthy count.
- Swarm: a one-replica service on a manager (the Swarm API answers only there) with the node's Docker
  socket bind-mounted, running the controller's loop; its actions are in `docker service logs phoenix`.
- Kubernetes: a CronJob running one controller pass per interval under a ServiceAccount whose Role
  grants exactly get/list on pods and create on pods/eviction in the app's namespace; the eviction API
  honours the PodDisruptionBudget (minAvailable) that K8sApp sets on every service.
Both renderers return None (create nothing) when phoenix mode is off.
"""
from __future__ import annotations

from typing import Mapping, Optional

import pulumi
import pulumi_docker as docker

from components.apps.k8s_controller import K8sController
from components.apps.swarm_app import image_platforms
from components.config import AppConfig

NAME = "phoenix"
MODULE = "sampleapp.phoenix"
DOCKER_SOCKET = "/var/run/docker.sock"
RBAC_RULES = (
    # Reads: find the pods of a service and whether they are Ready.
    {"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    # The one write: ask for an eviction (refused with 429 when the disruption budget allows none).
    {"api_groups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
)


def controller_env(app: AppConfig) -> dict[str, str]:
    return {"PHOENIX_SERVICES": ",".join(app.phoenix_services), "PHOENIX_INTERVAL": str(app.phoenix_interval)}


def cron_schedule(interval_s: int) -> str:
    """The CronJob schedule nearest to `interval_s` (cron counts minutes: at least every minute)."""
    minutes = max(1, round(interval_s / 60))
    if minutes < 60:
        return f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    hours = max(1, round(minutes / 60))
    return f"0 */{hours} * * *" if hours < 24 else "0 0 * * *"


class SwarmPhoenix(pulumi.ComponentResource):
    """The phoenix controller as a Swarm service on the managers. Pass the Swarm's provider in `opts`."""

    service: docker.Service

    def __init__(self, name: str, app: AppConfig, image: pulumi.Input[str], labels: Mapping[str, str],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:apps:SwarmPhoenix", name, None, opts)
        self.service = docker.Service(
            f"{name}-service",
            name=NAME,
            labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in {**labels, "io.phoenix.service": NAME}.items()],
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=image,
                    commands=["python3", "-m", MODULE, "swarm"],
                    isolation="default",
                    env={**controller_env(app), "NODE_NAME": "{{.Node.Hostname}}"},
                    # The manager's own engine: services, tasks and nodes of the swarm.
                    mounts=[docker.ServiceTaskSpecContainerSpecMountArgs(
                        type="bind", source=DOCKER_SOCKET, target=DOCKER_SOCKET)],
                    # Alive = the loop touched its heartbeat file lately (the image's default probes HTTP).
                    healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                        tests=["CMD", "python3", "-m", MODULE, "healthcheck"], interval="10s", timeout="5s",
                        retries=3, start_period="10s"),
                    # On SIGTERM the controller resumes paused nodes and closes the round in flight
                    # (a round lasts about start + health + the update's monitor window: ~15 s).
                    stop_grace_period="30s",
                ),
                placement=docker.ServiceTaskSpecPlacementArgs(constraints=["node.role==manager"],
                                                              platforms=image_platforms(image)),
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(nano_cpus=200_000_000, memory_bytes=64 * 1024 * 1024),
                    reservation=docker.ServiceTaskSpecResourcesReservationArgs(
                        nano_cpus=10_000_000, memory_bytes=16 * 1024 * 1024)),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s", max_attempts=0),
            ),
            # One controller at a time: two would pause each other's nodes, so the old one stops first.
            # Docker's defaults spelled out, so that `pulumi refresh` finds what the program says.
            update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="rollback",
                                                         delay="0s", monitor="5s", max_failure_ratio="0.0"),
            # The name is fixed in the swarm: a replacement must free it first.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        self.register_outputs({"service": self.service.name})


def swarm_phoenix(name: str, app: AppConfig, image: pulumi.Input[str], labels: Mapping[str, str],
                  opts: Optional[pulumi.ResourceOptions] = None) -> Optional[SwarmPhoenix]:
    """The Swarm controller when phoenix mode is on, else nothing."""
    return SwarmPhoenix(name, app, image, labels, opts) if app.phoenix else None


class K8sPhoenix(K8sController):
    """The phoenix controller as a CronJob with least-privilege RBAC. Pass the cluster's provider in `opts`."""

    TYPE = "phoenix:apps:K8sPhoenix"

    def __init__(self, name: str, app: AppConfig, image: pulumi.Input[str], labels: Mapping[str, str],
                 namespace: pulumi.Input[str], opts: Optional[pulumi.ResourceOptions] = None,
                 pull_policy: str = "IfNotPresent"):
        super().__init__(name, {
            "object_name": NAME, "command": ["python3", "-m", MODULE, "k8s"], "env": controller_env(app),
            "rules": RBAC_RULES, "schedule": cron_schedule(app.phoenix_interval),
            "keep_finished_s": max(600, app.phoenix_interval * 2),
            "image": image, "pull_policy": pull_policy, "namespace": namespace, "labels": labels}, opts)


def k8s_phoenix(name: str, app: AppConfig, image: pulumi.Input[str], labels: Mapping[str, str],
                namespace: pulumi.Input[str], opts: Optional[pulumi.ResourceOptions] = None,
                pull_policy: str = "IfNotPresent") -> Optional[K8sPhoenix]:
    """The Kubernetes controller (CronJob + least-privilege RBAC) when phoenix mode is on, else nothing."""
    return K8sPhoenix(name, app, image, labels, namespace, opts, pull_policy) if app.phoenix else None

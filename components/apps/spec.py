"""The sample microservices, defined once; swarm_app.py and k8s_app.py render this definition.

`web` is the entry: it answers users and calls `api` over the cluster network by service name.
Replicas, ports, probes, resources and the update policy live here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from components.config import AppConfig


@dataclass(frozen=True)
class Probe:
    """An HTTP check of a container. The defaults ride out a slow answer: a container capped at a
    quarter of a CPU can miss one check under load, and must not leave the load balancer (readiness)
    or be restarted (liveness) for that; several misses in a row mean something is wrong."""

    path: str
    port: int
    period_s: int = 2
    timeout_s: int = 2
    failures: int = 3
    """Consecutive failures before the container is unhealthy (liveness) or unready (readiness)."""
    initial_delay_s: int = 0
    start_grace_s: int = 0
    """How long a starting container may fail the check without counting (Swarm's health-check start
    period, Kubernetes' startup probe)."""


@dataclass(frozen=True)
class Resources:
    cpu_millis: int
    memory_mb: int
    request_cpu_millis: int
    request_memory_mb: int


@dataclass(frozen=True)
class UpdatePolicy:
    """Rolling update: one at a time, new before old, roll back when the new one is unhealthy."""

    parallelism: int = 1
    max_unavailable: int = 0
    max_surge: int = 1
    delay_s: int = 2
    monitor_s: int = 10
    """How long a new task must stay healthy before the update moves on."""
    max_failure_ratio: float = 0.0
    progress_deadline_s: int = 120
    """Kubernetes: a rollout that makes no progress for this long has failed, and is rolled back (a pod
    pull, start and monitor window fit in it with room to spare). Swarm judges each task by its health
    check and the monitor window instead."""
    rollout_timeout_s: int = 180
    """How long `pulumi up` waits for one service's rollout before it fails (Swarm's convergence,
    Kubernetes' Deployment await)."""

    @property
    def rollback_after_s(self) -> int:
        """Kubernetes: how long a failed rollout is left before the rollback controller undoes it. Until
        `pulumi up` has given up on it, plus a minute: undone earlier, the old version would become
        available again and `pulumi up` would report it as a success. The old pods serve meanwhile."""
        return self.rollout_timeout_s - self.progress_deadline_s + 60


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    """Python module of the sample app image that runs this service."""
    port: int
    replicas: int
    env: Mapping[str, str]
    liveness: Probe
    readiness: Probe
    resources: Resources
    entry: bool = False
    """The service users reach (published on the entry port / through the Ingress)."""
    update: UpdatePolicy = field(default_factory=UpdatePolicy)
    stop_grace_s: int = 10

    @property
    def command(self) -> list[str]:
        return ["python3", "-m", self.module]

    @property
    def probe_command(self) -> list[str]:
        """The liveness check as a command (Docker health checks run commands, not HTTP GETs)."""
        return ["python3", "-m", "sampleapp.probe", str(self.port), self.liveness.path]


def service_spec(name: str, port: int, replicas: int, env: Mapping[str, str], entry: bool = False) -> ServiceSpec:
    return ServiceSpec(
        name=name, module=f"sampleapp.{name}", port=port, replicas=replicas,
        env={"PORT": str(port), **env}, entry=entry,
        # Swarm runs the liveness check as a command (python3 starts in the container: a 4 s timeout).
        liveness=Probe("/healthz", port, timeout_s=4, initial_delay_s=2, start_grace_s=10),
        readiness=Probe("/readyz", port),
        resources=Resources(cpu_millis=250, memory_mb=96, request_cpu_millis=50, request_memory_mb=32))


def sample_services(app: AppConfig) -> list[ServiceSpec]:
    """The app: `api` first (web depends on it), then the `web` entry."""
    common = {"APP_VERSION": app.version}
    api = service_spec("api", 8081, app.replicas["api"], common)
    web = service_spec("web", 8080, app.replicas["web"], {**common, "API_URL": f"http://{api.name}:{api.port}"},
                   entry=True)
    return [api, web]


def entry_service(services: list[ServiceSpec]) -> ServiceSpec:
    return next(s for s in services if s.entry)

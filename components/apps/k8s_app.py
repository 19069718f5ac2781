"""The sample microservices rendered to Kubernetes (k3s).

Every service of the definition (spec.sample_services) becomes, in one namespace:
- a Deployment with the definition's image and command, liveness and readiness probes on its
  /healthz and /readyz, a startup probe that gives a starting container the same grace as the
  Swarm health check's start period, resource requests and limits, a rolling update that never goes
  below the replica count (maxUnavailable 0, maxSurge from the definition; a new pod must stay ready
  for the definition's monitor window) and fails after the definition's progress deadline (the
  rollback controller, rollback.py, then restores the previous version), a soft spread across
  nodes, and NODE_NAME from the downward API (the node a pod runs on, as Swarm's {{.Node.Hostname}});
- a headless Service named like the service: `api` resolves to the ready pods' own addresses, as
  Swarm's dnsrr names do, so a caller that finds one silent (its node lost, not yet noticed by the
  node controller) connects to the next address instead of getting the same dead pod from kube-proxy;
- a HorizontalPodAutoscaler between the definition's replicas and phoenix:autoscaleMax (CPU; k3s
  bundles metrics-server): it alone sets the Deployment's replica count;
- a PodDisruptionBudget keeping phoenix:minAvailable pods through drains.
Pods leave gracefully and a lost node is left quickly: a deleted pod (rollout, eviction, scale-in)
keeps serving as it is for DRAIN_S (a preStop sleep; SIGTERM and the definition's stop grace come
after it) while the Service's DNS records and Traefik stop sending it requests, and the pods of a
node that stopped answering are replaced after LOST_NODE_TOLERATION_S instead of the API server's
default five minutes.
The entry service is reached through an Ingress of the cluster's Traefik. Nothing here repeats a
replica count, port or probe of the definition.
"""
from __future__ import annotations

from typing import Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.apps.spec import Probe, ServiceSpec
from components.config import PROJECT, AppConfig

NAMESPACE = "phoenix"
INGRESS_CLASS = "traefik"
"""The IngressClass of the Traefik that k3s deploys."""
CPU_TARGET_PERCENT = 70
"""Average CPU use (of requests) above which the autoscaler adds pods."""
DRAIN_S = 10
"""Seconds a deleted pod keeps serving before its container gets SIGTERM: removing a pod from the
Service's DNS records and from Traefik's servers happens asynchronously, a second or two after its
deletion, several seconds on a loaded machine (5 s lost requests at load 40 here).
The sleep runs in the kubelet (`preStop.sleep`, Kubernetes >= 1.30): the image needs no binary."""
LOST_NODE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
"""Taints the node controller puts on a node whose kubelet stopped reporting (or reports NotReady)."""
LOST_NODE_TOLERATION_S = 1
"""How long a pod stays bound to such a node before it is evicted and its ReplicaSet replaces it
elsewhere (default 300 s). The node controller's grace period is the guard against a node that is only
slow to report (kubeadm: components/orchestrators/scripts/kubeadm.sh); once it has tainted the node,
waiting longer only delays the replacements. A flapping node costs restarts, not availability."""
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
"""kubeadm keeps pods off control-plane nodes with it. The app's pods tolerate it, as Swarm managers and
k3s servers run tasks too: on 1 server + 2 workers the soft spread then puts one of three web pods on
each node, and a lost worker takes a third of them instead of two (Traefik's retries, and requests,
run into the lost pods until the node controller notices)."""
PATCH_FORCE = {"pulumi.com/patchForce": "true"}
"""On a Deployment: Pulumi's server-side apply takes back fields another writer changed (the rollback
controller's undo of a failed version) instead of failing on the field-manager conflict."""


def validate(services: Sequence[ServiceSpec]) -> None:
    """Refuse a definition Kubernetes cannot run as meant, naming the service, field and fix."""
    problems = []
    for s in services:
        for kind, probe in (("liveness", s.liveness), ("readiness", s.readiness)):
            if not probe.port:
                problems.append(f"{s.name}: {kind} probe {probe.path} has no port; set it to the service port {s.port}")
            elif probe.port != s.port:
                problems.append(f"{s.name}: {kind} probe port {probe.port} is not the service port {s.port}; "
                                "the container only listens on its service port")
            if not probe.path.startswith("/"):
                problems.append(f"{s.name}: {kind} probe path {probe.path!r} must start with '/'")
        if s.replicas < 1:
            problems.append(f"{s.name}: replicas {s.replicas} must be at least 1")
        r = s.resources
        if r.request_cpu_millis > r.cpu_millis or r.request_memory_mb > r.memory_mb:
            problems.append(f"{s.name}: resource requests ({r.request_cpu_millis}m, {r.request_memory_mb}Mi) "
                            f"exceed the limits ({r.cpu_millis}m, {r.memory_mb}Mi)")
        if s.update.max_unavailable == 0 and s.update.max_surge == 0:
            problems.append(f"{s.name}: update.max_surge and update.max_unavailable are both 0; a rollout could never progress")
    entries = [s.name for s in services if s.entry]
    if len(entries) != 1:
        problems.append(f"exactly one entry service is needed, got {entries or 'none'}")
    if problems:
        raise ValueError("the app definition cannot be rendered to Kubernetes:\n  " + "\n  ".join(problems))


def selector(s: ServiceSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": s.name, "app.kubernetes.io/part-of": PROJECT}


def http_probe(p: Probe) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=p.path, port=p.port),
        period_seconds=p.period_s, timeout_seconds=p.timeout_s, failure_threshold=p.failures,
        initial_delay_seconds=p.initial_delay_s)


def startup_probe(s: ServiceSpec) -> k8s.core.v1.ProbeArgs:
    """Liveness's check every second during the start grace; liveness and readiness start after it."""
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=s.liveness.path, port=s.liveness.port),
        period_seconds=1, timeout_seconds=s.liveness.timeout_s, failure_threshold=max(s.liveness.start_grace_s, 1))


def container(s: ServiceSpec, image: pulumi.Input[str], pull_policy: str = "IfNotPresent") -> k8s.core.v1.ContainerArgs:
    r = s.resources
    return k8s.core.v1.ContainerArgs(
        name=s.name,
        image=image,
        image_pull_policy=pull_policy,
        command=s.command,
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=s.port, protocol="TCP")],
        env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in s.env.items()] + [
            k8s.core.v1.EnvVarArgs(name="NODE_NAME", value_from=k8s.core.v1.EnvVarSourceArgs(
                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="spec.nodeName")))],
        liveness_probe=http_probe(s.liveness),
        readiness_probe=http_probe(s.readiness),
        startup_probe=startup_probe(s),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": f"{r.request_cpu_millis}m", "memory": f"{r.request_memory_mb}Mi"},
            limits={"cpu": f"{r.cpu_millis}m", "memory": f"{r.memory_mb}Mi"}),
        security_context=k8s.core.v1.SecurityContextArgs(allow_privilege_escalation=False),
        lifecycle=k8s.core.v1.LifecycleArgs(pre_stop=k8s.core.v1.LifecycleHandlerArgs(
            sleep=k8s.core.v1.SleepActionArgs(seconds=DRAIN_S))),
    )


class K8sAppArgs(TypedDict):
    services: Sequence[ServiceSpec]
    """The app definition (spec.sample_services)."""
    image: pulumi.Input[str]
    """The sample app image as the nodes pull it."""
    pull_policy: NotRequired[str]
    """`IfNotPresent` (default: pulled from the stack's registry) or `Never` (loaded onto each node)."""
    app: AppConfig
    """Autoscaler bound and disruption budget (autoscaleMax, minAvailable)."""
    labels: Mapping[str, str]
    """Labels put on every object (stack and project)."""
    namespace: NotRequired[str]
    """Namespace of the app (default `phoenix`)."""


class K8sApp(pulumi.ComponentResource):
    """The app's namespace and, per service, Deployment, Service, autoscaler and disruption budget;
    an Ingress for the entry service. Pass the cluster's provider in `opts`."""

    def __init__(self, name: str, args: K8sAppArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:apps:K8sApp", name, None, opts)
        services, app = list(args["services"]), args["app"]
        validate(services)
        labels = dict(args["labels"])
        child = pulumi.ResourceOptions(parent=self)

        # Deleting the namespace is asked for, not waited out: Kubernetes finalizes it only once every
        # aggregated API answers, and a metrics-server on a stopped node would hold `destroy` for 10 min.
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name=args.get("namespace", NAMESPACE), labels=labels,
                                                                annotations={"pulumi.com/skipAwait": "true"}),
            opts=child)
        namespace = ns.metadata.name

        def meta(s: ServiceSpec) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=s.name, namespace=namespace, labels={**labels, **selector(s)})

        self.deployments: dict[str, k8s.apps.v1.Deployment] = {}
        self.services: dict[str, k8s.core.v1.Service] = {}
        self.autoscalers: dict[str, k8s.autoscaling.v2.HorizontalPodAutoscaler] = {}
        self.budgets: dict[str, k8s.policy.v1.PodDisruptionBudget] = {}
        for s in services:
            match = k8s.meta.v1.LabelSelectorArgs(match_labels=selector(s))
            self.deployments[s.name] = k8s.apps.v1.Deployment(
                f"{name}-{s.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=s.name, namespace=namespace,
                                                    labels={**labels, **selector(s)}, annotations=PATCH_FORCE),
                # No `replicas`: the autoscaler (minimum = the definition's replicas) alone sets them. With
                # server-side apply a count here would make Pulumi an owner of the field the autoscaler
                # writes, and each `pulumi up` would reset the autoscaled count.
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    selector=match,
                    min_ready_seconds=s.update.monitor_s,
                    progress_deadline_seconds=s.update.progress_deadline_s,
                    strategy=k8s.apps.v1.DeploymentStrategyArgs(
                        type="RollingUpdate",
                        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                            max_unavailable=s.update.max_unavailable, max_surge=s.update.max_surge)),
                    template=k8s.core.v1.PodTemplateSpecArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(labels={**labels, **selector(s)}),
                        spec=k8s.core.v1.PodSpecArgs(
                            containers=[container(s, args["image"], args.get("pull_policy", "IfNotPresent"))],
                            # The drain first, then the app's own graceful stop (SIGTERM).
                            termination_grace_period_seconds=DRAIN_S + s.stop_grace_s,
                            tolerations=[k8s.core.v1.TolerationArgs(
                                key=taint, operator="Exists", effect="NoExecute",
                                toleration_seconds=LOST_NODE_TOLERATION_S) for taint in LOST_NODE_TAINTS] + [
                                k8s.core.v1.TolerationArgs(key=CONTROL_PLANE_TAINT, operator="Exists", effect="NoSchedule")],
                            topology_spread_constraints=[k8s.core.v1.TopologySpreadConstraintArgs(
                                max_skew=1, topology_key="kubernetes.io/hostname",
                                # Soft, as Swarm's spread preference: never leaves a replica unscheduled.
                                when_unsatisfiable="ScheduleAnyway", label_selector=match)]))),
                # `pulumi up` gives up on a rollout as on Swarm; a failed one is then rolled back.
                opts=pulumi.ResourceOptions(parent=self, custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{s.update.rollout_timeout_s}s", update=f"{s.update.rollout_timeout_s}s")))
            self.services[s.name] = k8s.core.v1.Service(
                f"{name}-{s.name}-svc",
                metadata=meta(s),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP", cluster_ip="None", selector=selector(s),
                    ports=[k8s.core.v1.ServicePortArgs(name="http", port=s.port, target_port="http", protocol="TCP")]),
                opts=child)
            self.autoscalers[s.name] = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-{s.name}-hpa",
                metadata=meta(s),
                spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                    scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                        api_version="apps/v1", kind="Deployment", name=self.deployments[s.name].metadata.name),
                    min_replicas=s.replicas,
                    max_replicas=app.autoscale_max,
                    metrics=[k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource", resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu", target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=CPU_TARGET_PERCENT)))]),
                opts=child)
            self.budgets[s.name] = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{s.name}-pdb",
                metadata=meta(s),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(min_available=app.min_available, selector=match),
                opts=child)

        entry = next(s for s in services if s.entry)
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=entry.name, namespace=namespace, labels={**labels, **selector(entry)}),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=INGRESS_CLASS,
                rules=[k8s.networking.v1.IngressRuleArgs(http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[
                    k8s.networking.v1.HTTPIngressPathArgs(
                        path="/", path_type="Prefix",
                        backend=k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
                            name=self.services[entry.name].metadata.name,
                            port=k8s.networking.v1.ServiceBackendPortArgs(number=entry.port))))]))]),
            opts=child)

        self.namespace = namespace
        self.register_outputs({
            "namespace": namespace,
            "deployments": {k: v.metadata.name for k, v in self.deployments.items()},
            "entry": entry.name,
        })

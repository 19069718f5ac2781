"""What every Kubernetes orchestrator shares above its bootstrap (k3s now, kubeadm next).

A bootstrap component (k3s.K3s, ...) forms the cluster and hands over a `KubernetesCluster`: the
admin kubeconfig (a secret, pointed at the address users reach), the API URL and the resources after
which every node is Ready. `deploy` turns that into a Kubernetes provider and the app on it: the
Deployments, Services, Ingress, autoscalers and disruption budgets (K8sApp), the controller that
rolls back a failed version (K8sRollback) and, in phoenix mode, the phoenix CronJob.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_command import local

from components.apps.k8s_app import K8sApp
from components.apps.phoenix import k8s_phoenix
from components.apps.rollback import K8sRollback
from components.apps.spec import ServiceSpec
from components.config import ClusterConfig
from components.nodes.node import Node
from components.orchestrators.orchestrator import Complaint, Deployment


SHARED_SCRIPT = (Path(__file__).parent / "scripts" / "kubernetes.sh").read_text()


def bootstrap_script(path: Path) -> str:
    """An orchestrator's bootstrap script with the shared functions (scripts/kubernetes.sh) before it."""
    return SHARED_SCRIPT + "\n" + path.read_text()


class KubernetesCluster(Protocol):
    """What a Kubernetes bootstrap component provides."""

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointed at `api_url`: a secret."""
    api_url: pulumi.Output[str]
    server_address: pulumi.Input[str]
    """The first server's address as the nodes reach it."""
    ready: Sequence[pulumi.Resource]
    """Once these exist, the API answers and every node is Ready."""
    leader: Node
    """The first server: where the bootstrap script's cluster-wide actions run."""

    def script(self, *args: str) -> list[str]:
        """argv that runs one action of the orchestrator's bootstrap script on a node."""


def first_server(nodes: Sequence[Node], orchestrator: str) -> Node:
    """The node that starts the cluster: the first of an odd number of servers (role manager), as the
    embedded etcd of every Kubernetes orchestrator here needs for its quorum."""
    servers = [n for n in nodes if n.role == "manager"]
    if not servers or len(servers) % 2 == 0:
        raise ValueError(f"{orchestrator} needs an odd number of server nodes (role manager), got {len(servers)}")
    return servers[0]


def user_kubeconfig(raw: str, server: str, name: str) -> str:
    """An admin kubeconfig pointed at `server` (what users reach), its entries named `name`."""
    if not raw:
        return ""
    doc = yaml.safe_load(raw)
    for cluster in doc.get("clusters", []):
        cluster["name"] = name
        cluster["cluster"]["server"] = server
    for user in doc.get("users", []):
        user["name"] = name
    for context in doc.get("contexts", []):
        context["name"] = name
        context["context"].update(cluster=name, user=name)
    doc["current-context"] = name
    return yaml.safe_dump(doc, sort_keys=False)


def secret_once(name: str, command: str, opts: Optional[pulumi.ResourceOptions] = None) -> pulumi.Output[str]:
    """The output of `command`, run once on the Pulumi host: random cluster secrets (tokens, keys).

    Its stdout is stored encrypted in the state and never shown. No triggers, and a changed command
    text is ignored: the secret must never change, or nodes keeping their data refuse it.
    """
    command_opts = pulumi.ResourceOptions.merge(
        pulumi.ResourceOptions(additional_secret_outputs=["stdout"], ignore_changes=["create"]), opts)
    made = local.Command(name, create=command, logging=local.Logging.STDERR, opts=command_opts)
    return pulumi.Output.secret(made.stdout.apply(lambda out: out or ""))


def validate(cfg: ClusterConfig, bad: Complaint) -> None:
    """Config checks every Kubernetes orchestrator shares."""
    for service, replicas in cfg.app.replicas.items():
        # Every service gets a PodDisruptionBudget: with one replica and minAvailable 1 no pod could
        # ever be evicted (drains and phoenix mode would hang). Larger counts are checked for all.
        if replicas == 1 and cfg.app.min_available >= 1:
            bad("minAvailable", cfg.app.min_available, f"below phoenix:{service}Replicas (1), or no pod could ever be "
                "evicted for a drain: set phoenix:minAvailable to 0 or raise the replicas")


SETTLE_TIMEOUT_S = 300
"""How long the app's Deployments may take to reach their autoscalers' minimum after `up` made them."""


def deploy(name: str, cfg: ClusterConfig, cluster: KubernetesCluster, services: Sequence[ServiceSpec],
           image: pulumi.Input[str], opts: pulumi.ResourceOptions) -> Deployment:
    """The app on a formed cluster, through a provider built from its kubeconfig."""
    provider = k8s.Provider(f"{name}-kubernetes", kubeconfig=cluster.kubeconfig,
                            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(cluster.ready))))
    app_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider))
    # Container nodes pull from the stack's registry; hosts hold the image already (Orchestrator.image_loader).
    pull_policy = "IfNotPresent" if cfg.substrate == "docker" else "Never"
    app = K8sApp(f"{name}-app", {"services": services, "image": image, "pull_policy": pull_policy, "app": cfg.app,
                                 "labels": cfg.labels}, app_opts)
    K8sRollback(f"{name}-rollback", {"image": image, "pull_policy": pull_policy, "namespace": app.namespace,
                                     "labels": cfg.labels, "after_s": max(s.update.rollback_after_s for s in services)},
                app_opts)
    k8s_phoenix(f"{name}-phoenix", cfg.app, image, cfg.labels, app.namespace, app_opts, pull_policy)  # nothing when off
    # `up` ends at full strength: a Deployment starts at one pod and its autoscaler raises it to the
    # minimum a little later, and a refresh in between would read it as unavailable.
    minimums = [f"{s.name}={s.replicas}" for s in services]
    settled = cluster.leader.run(f"{name}-app-settled", pulumi.Output.from_input(app.namespace).apply(
        lambda ns: cluster.script("wait-app", ns, str(SETTLE_TIMEOUT_S), *minimums)),
                                 parent=cluster, depends_on=[app])
    return Deployment(manager_address=cluster.server_address,
                      secrets={"kubeconfig": cluster.kubeconfig},
                      outputs={"kubernetesApi": cluster.api_url}, app=[app, settled])

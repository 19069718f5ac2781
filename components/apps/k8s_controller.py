"""A small controller of the sample app image, run on Kubernetes as a CronJob (one pass per run) under a
ServiceAccount whose namespaced Role grants exactly the given rules. Phoenix mode (phoenix.py) and the
rollback of failed rollouts (rollback.py) are two of them.
"""
from __future__ import annotations

from typing import Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.config import PROJECT


class K8sControllerArgs(TypedDict):
    object_name: str
    """Name of the ServiceAccount, Role, RoleBinding and CronJob (and the `app.kubernetes.io/name` label)."""
    command: Sequence[str]
    """What one pass runs in the sample app image (`python3 -m sampleapp.<module> ...`)."""
    env: Mapping[str, str]
    """Environment of the pass (PHOENIX_NAMESPACE, the pod's own namespace, is always set)."""
    rules: Sequence[Mapping[str, Sequence[str]]]
    """The Role's rules (api_groups, resources, verbs): everything the controller may do."""
    schedule: str
    """Cron schedule of the passes."""
    keep_finished_s: int
    """How long a finished Job (and its log) is kept."""
    image: pulumi.Input[str]
    pull_policy: NotRequired[str]
    """`IfNotPresent` (default: pulled from the stack's registry) or `Never` (loaded onto each node)."""
    namespace: pulumi.Input[str]
    labels: Mapping[str, str]


class K8sController(pulumi.ComponentResource):
    """ServiceAccount, Role, RoleBinding and CronJob in the app's namespace. Pass the cluster's provider in `opts`."""

    TYPE = "phoenix:apps:K8sController"

    def __init__(self, name: str, args: K8sControllerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        object_name, namespace = args["object_name"], args["namespace"]
        all_labels = {**args["labels"], "app.kubernetes.io/name": object_name, "app.kubernetes.io/part-of": PROJECT}

        def meta() -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=all_labels)

        self.account = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=meta(), opts=child)
        self.role = k8s.rbac.v1.Role(
            f"{name}-role", metadata=meta(), rules=[k8s.rbac.v1.PolicyRuleArgs(**rule) for rule in args["rules"]],
            opts=child)
        self.binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding", metadata=meta(),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role",
                                             name=self.role.metadata.name),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=self.account.metadata.name,
                                              namespace=namespace)],
            opts=child)
        env = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in args["env"].items()] + [
            k8s.core.v1.EnvVarArgs(name="PHOENIX_NAMESPACE", value_from=k8s.core.v1.EnvVarSourceArgs(
                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.namespace")))]
        self.cronjob = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=meta(),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args["schedule"],
                # A pass that is still running (API slow) is not doubled by the next one.
                concurrency_policy="Forbid",
                starting_deadline_seconds=60,
                successful_jobs_history_limit=1,
                failed_jobs_history_limit=1,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=all_labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=0,
                        active_deadline_seconds=120,
                        ttl_seconds_after_finished=args["keep_finished_s"],
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=all_labels),
                            spec=k8s.core.v1.PodSpecArgs(
                                service_account_name=self.account.metadata.name,
                                restart_policy="Never",
                                containers=[k8s.core.v1.ContainerArgs(
                                    name=object_name, image=args["image"], image_pull_policy=args.get("pull_policy", "IfNotPresent"),
                                    command=list(args["command"]), env=env,
                                    resources=k8s.core.v1.ResourceRequirementsArgs(
                                        requests={"cpu": "10m", "memory": "16Mi"},
                                        limits={"cpu": "200m", "memory": "64Mi"}),
                                    security_context=k8s.core.v1.SecurityContextArgs(
                                        run_as_non_root=True, run_as_user=65534, allow_privilege_escalation=False,
                                        read_only_root_filesystem=True,
                                        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])))]))))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.binding]))
        self.register_outputs({"cronjob": self.cronjob.metadata.name, "schedule": args["schedule"]})

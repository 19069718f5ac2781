"""Automatic rollback of a failed version on Kubernetes, as Swarm's update policy does by itself.

A Deployment's rollout fails when it makes no progress for the definition's progress deadline
(spec.UpdatePolicy.progress_deadline_s); once `pulumi up` has given up on it (rollback_after_s), the
controller `sampleapp.rollback` (its docstring says how) restores the version still serving. It runs
every minute as a CronJob under a ServiceAccount that may only list and patch Deployments and list
ReplicaSets in the app's namespace.
"""
from __future__ import annotations

from typing import Mapping, NotRequired, Optional, TypedDict

import pulumi

from components.apps.k8s_controller import K8sController

NAME = "rollback"
MODULE = "sampleapp.rollback"
SCHEDULE = "* * * * *"
"""Every minute, the finest a CronJob can do: a failed version is undone within a minute of its deadline."""
RBAC_RULES = (
    # Find failed rollouts and undo them (a JSON patch of the pod template).
    {"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["list", "patch"]},
    # Find the version still serving.
    {"api_groups": ["apps"], "resources": ["replicasets"], "verbs": ["list"]},
)


class K8sRollbackArgs(TypedDict):
    image: pulumi.Input[str]
    """The sample app image (it carries the controller)."""
    pull_policy: NotRequired[str]
    """`IfNotPresent` (default) or `Never` (the image was loaded onto each node)."""
    namespace: pulumi.Input[str]
    """The app's namespace: the controller acts there only."""
    after_s: int
    """How long a failed rollout is left alone (spec.UpdatePolicy.rollback_after_s)."""
    labels: Mapping[str, str]


class K8sRollback(K8sController):
    """The rollback controller's CronJob and RBAC. Pass the cluster's provider in `opts`."""

    TYPE = "phoenix:apps:K8sRollback"

    def __init__(self, name: str, args: K8sRollbackArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(name, {
            "object_name": NAME, "command": ["python3", "-m", MODULE],
            "env": {"PHOENIX_ROLLBACK_AFTER": str(args["after_s"])}, "rules": RBAC_RULES,
            "schedule": SCHEDULE, "keep_finished_s": 600,
            "image": args["image"], "pull_policy": args.get("pull_policy", "IfNotPresent"),
            "namespace": args["namespace"], "labels": args["labels"]}, opts)

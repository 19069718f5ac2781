"""Rollback of failed rollouts on Kubernetes: what Swarm's `update_config.failure_action: rollback` does
on its own, done by one pass of this controller (a CronJob run, every minute):

    python3 -m sampleapp.rollback    # with a ServiceAccount token; PHOENIX_NAMESPACE (default: the pod's)
                                     # PHOENIX_ROLLBACK_AFTER: seconds a failure is left alone (0)

A Deployment whose rollout made no progress for `progressDeadlineSeconds` gets the condition
Progressing=False, reason ProgressDeadlineExceeded, and then stays as it is: the old pods keep serving
(maxUnavailable 0), the new ones never become ready. Once that condition is PHOENIX_ROLLBACK_AFTER
seconds old (by then `pulumi up` has reported the failure: undone earlier, the old version would be
available again and the waiting `pulumi up` would take it for a success), for each such Deployment
(not paused, status current) the pass restores the version still serving, as `kubectl rollout undo`
would: the newest
ReplicaSet the Deployment owns is the failed version; the newest older one that still has pods is
the last good one, and its pod template (without the pod-template-hash label) replaces the
Deployment's. The Deployment controller then makes that ReplicaSet the current one again (its pods
are running already) and scales the failed one down. The patch is a JSON patch that first tests the
resourceVersion it read, so a concurrent change (a new `pulumi up`) is never overwritten, and it is
written by the field manager `phoenix-rollback`. Left alone, and reported: a Deployment whose first
version failed (nothing to go back to) and one whose older versions have no pods any more (its
rollout had finished: what stalls is a scale-up that cannot be placed, not a version).

The ServiceAccount may get/list/patch Deployments and list ReplicaSets in its namespace, nothing else.
Standard library only; one line per action on stdout: `<time> rollback <event> key=value ...`.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from typing import Callable
from urllib.parse import quote

from sampleapp.phoenix import ApiError, JsonApi, in_cluster, log, parse_time

PROGRAM = "rollback"
FIELD_MANAGER = "phoenix-rollback"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
SELECTOR = "app.kubernetes.io/part-of=phoenix"


def deadline_exceeded(deployment: dict) -> dict | None:
    """The condition saying the current rollout failed (no progress within its deadline), if it did."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    if spec.get("paused") or status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return None  # paused on purpose, or the controller has not looked at the latest spec yet
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"
                 and c.get("status") == "False" and c.get("reason") == "ProgressDeadlineExceeded"), None)


def revision(replicaset: dict) -> int:
    try:
        return int(replicaset["metadata"].get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def owned(deployment: dict, replicasets: list[dict]) -> list[dict]:
    """The ReplicaSets the Deployment controls, oldest revision first."""
    uid = deployment["metadata"]["uid"]
    mine = [rs for rs in replicasets
            if any(o.get("uid") == uid and o.get("controller") for o in rs["metadata"].get("ownerReferences") or [])]
    return sorted(mine, key=revision)


def previous_template(deployment: dict, replicasets: list[dict]) -> tuple[int, dict] | str:
    """(revision, pod template) of the version still serving beside the failed one, or why there is none."""
    mine = owned(deployment, replicasets)
    if len(mine) < 2:
        return "no earlier revision to roll back to (the first version failed)"
    serving = [rs for rs in mine[:-1] if rs.get("spec", {}).get("replicas", 0) > 0]
    if not serving:
        return "no earlier revision has pods: the rollout had finished, a scale-up is what stalls"
    template = copy.deepcopy(serving[-1]["spec"]["template"])
    template.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    return revision(serving[-1]), template


def undo_patch(deployment: dict, template: dict) -> list[dict]:
    """JSON patch: the template of the good revision, only if the Deployment is still what was read."""
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": deployment["metadata"]["resourceVersion"]},
            {"op": "replace", "path": "/spec/template", "value": template}]


def rollback_pass(api: JsonApi, namespace: str, after_s: float = 0,
                  clock: Callable[[], float] = time.time) -> int:
    """Roll back every rollout of the app in `namespace` that failed at least `after_s` ago; returns how many."""
    base = f"/apis/apps/v1/namespaces/{namespace}"
    deployments = (api.get(f"{base}/deployments?labelSelector={quote(SELECTOR)}") or {}).get("items", [])
    failed = []
    for d in deployments:
        condition = deadline_exceeded(d)
        if condition is None:
            continue
        age = clock() - parse_time(condition.get("lastTransitionTime", ""))
        if age < after_s:
            log("wait", PROGRAM, deployment=d["metadata"]["name"], failed_for=f"{age:.0f}s", undo_after=f"{after_s:.0f}s")
            continue
        failed.append(d)
    if not failed:
        return 0
    replicasets = (api.get(f"{base}/replicasets?labelSelector={quote(SELECTOR)}") or {}).get("items", [])
    done = 0
    for d in failed:
        name = d["metadata"]["name"]
        target = previous_template(d, replicasets)
        if isinstance(target, str):
            log("skip", PROGRAM, deployment=name, reason=target)
            continue
        to_revision, template = target
        failed_revision = d["metadata"].get("annotations", {}).get(REVISION, "?")
        try:
            api.request("PATCH", f"{base}/deployments/{name}?fieldManager={FIELD_MANAGER}", undo_patch(d, template),
                        ok=(200,), content_type="application/json-patch+json")
        except ApiError as err:
            # 409/422: the Deployment changed since it was read (a new version is being applied): next pass.
            log("error", PROGRAM, deployment=name, step="undo", error=str(err))
            continue
        done += 1
        log("undo", PROGRAM, deployment=name, failed_revision=failed_revision, to_revision=to_revision,
            reason="ProgressDeadlineExceeded")
    return done


def main(env=None) -> int:
    env = os.environ if env is None else env
    api, namespace = in_cluster(env)
    log("start", PROGRAM, namespace=namespace)
    rollback_pass(api, namespace, float(env.get("PHOENIX_ROLLBACK_AFTER", "0")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

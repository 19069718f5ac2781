"""Rollback of a failed version on Kubernetes: the controller's decisions and the one request it makes
(sampleapp.rollback against a fake API), and how it is deployed (a CronJob with least-privilege RBAC,
on every Kubernetes cluster, phoenix mode or not)."""
import copy
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pulumi
import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "images" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from sampleapp import rollback as rb  # noqa: E402
from sampleapp.phoenix import ApiError  # noqa: E402

from components.apps.rollback import K8sRollback  # noqa: E402
from tests.unit.conftest import settled  # noqa: E402

NS = "phoenix"
FAILED = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
          "lastTransitionTime": "2026-12-01T10:00:00Z"}
FAILED_AT = 1796119200.0  # FAILED's lastTransitionTime as epoch seconds
PROGRESSING = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}


def template(version: str, hash_: str | None = None) -> dict:
    labels = {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "phoenix"}
    if hash_:
        labels[rb.HASH_LABEL] = hash_
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "reg/app:1",
                                     "env": [{"name": "APP_VERSION", "value": version}]}]}}


def deployment(version="2", condition=FAILED, generation=4, observed=4, paused=False, uid="d-web") -> dict:
    return {"metadata": {"name": "web", "namespace": NS, "uid": uid, "generation": generation,
                         "resourceVersion": "777", "annotations": {rb.REVISION: "2"}},
            "spec": {"paused": paused, "template": template(version)},
            "status": {"observedGeneration": observed, "conditions": [condition]}}


def replicaset(name, revision, version, replicas, owner="d-web") -> dict:
    return {"metadata": {"name": name, "annotations": {rb.REVISION: str(revision)},
                         "ownerReferences": [{"kind": "Deployment", "uid": owner, "controller": True}]},
            "spec": {"replicas": replicas, "template": template(version, hash_=f"h{revision}")}}


class FakeApi:
    """Answers the two lists the controller makes and records its patches."""

    def __init__(self, deployments, replicasets, refuse=None):
        self.deployments, self.replicasets, self.refuse = deployments, replicasets, refuse
        self.patches = []

    def get(self, path):
        parts = urlsplit(path)
        assert parse_qs(parts.query)["labelSelector"] == ["app.kubernetes.io/part-of=phoenix"]
        kind = parts.path.rsplit("/", 1)[1]
        assert parts.path == f"/apis/apps/v1/namespaces/{NS}/{kind}"
        return {"items": copy.deepcopy(self.deployments if kind == "deployments" else self.replicasets)}

    def request(self, method, path, body=None, ok=(200,), content_type="application/json"):
        if self.refuse:
            raise ApiError(self.refuse, "the object has been modified")
        self.patches.append((method, unquote(path), body, content_type))
        return {}


def test_a_failure_is_left_alone_until_pulumi_up_has_given_up_on_it(capsys):
    api = FakeApi([deployment()], [replicaset("web-h1", 1, "1", 3), replicaset("web-h2", 2, "2", 1)])
    assert rb.rollback_pass(api, NS, after_s=120, clock=lambda: FAILED_AT + 119) == 0 and api.patches == []
    assert "rollback wait deployment=web failed_for=119s undo_after=120s" in capsys.readouterr().out
    assert rb.rollback_pass(api, NS, after_s=120, clock=lambda: FAILED_AT + 120) == 1


def test_a_failed_rollout_gets_the_template_of_the_version_still_serving(capsys):
    api = FakeApi([deployment()], [replicaset("web-h1", 1, "1", 3), replicaset("web-h2", 2, "2", 1)])
    assert rb.rollback_pass(api, NS) == 1
    ((method, path, patch, content_type),) = api.patches
    assert (method, content_type) == ("PATCH", "application/json-patch+json")
    assert path == f"/apis/apps/v1/namespaces/{NS}/deployments/web?fieldManager=phoenix-rollback"
    # Only if nobody changed the Deployment since it was read (a new `pulumi up` wins).
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "777"}
    assert patch[1] == {"op": "replace", "path": "/spec/template", "value": template("1")}
    assert rb.HASH_LABEL not in json.dumps(patch)
    assert "rollback undo deployment=web failed_revision=2 to_revision=1" in capsys.readouterr().out


def test_the_newest_older_version_with_pods_is_restored():
    # v1 served, v2 was interrupted by v3 (v2 never took over), v3 failed: v1 is what still serves.
    api = FakeApi([deployment("3")], [replicaset("web-h1", 1, "1", 3), replicaset("web-h2", 2, "2", 0),
                                      replicaset("web-h3", 3, "3", 1),
                                      replicaset("other", 9, "x", 3, owner="d-other")])
    assert rb.rollback_pass(api, NS) == 1
    assert api.patches[0][2][1]["value"] == template("1")


@pytest.mark.parametrize("d", [
    deployment(condition=PROGRESSING),            # still progressing, or done
    deployment(paused=True),                      # paused on purpose
    deployment(generation=5, observed=4),         # status not yet about the newest spec
], ids=["progressing", "paused", "stale-status"])
def test_nothing_is_touched_unless_the_current_rollout_failed(d):
    api = FakeApi([d], [replicaset("web-h1", 1, "1", 3), replicaset("web-h2", 2, "2", 1)])
    assert rb.rollback_pass(api, NS) == 0 and api.patches == []


@pytest.mark.parametrize("replicasets, reason", [
    ([replicaset("web-h1", 1, "1", 1)], "the first version failed"),
    ([replicaset("web-h1", 1, "1", 0), replicaset("web-h2", 2, "2", 4)], "a scale-up is what stalls"),
], ids=["first-version", "finished-rollout"])
def test_no_undo_without_an_older_version_serving(replicasets, reason, capsys):
    api = FakeApi([deployment()], replicasets)
    assert rb.rollback_pass(api, NS) == 0 and api.patches == []
    assert reason in capsys.readouterr().out


def test_a_concurrent_change_is_reported_not_overwritten(capsys):
    api = FakeApi([deployment()], [replicaset("web-h1", 1, "1", 3), replicaset("web-h2", 2, "2", 1)], refuse=422)
    assert rb.rollback_pass(api, NS) == 0
    assert "rollback error deployment=web step=undo" in capsys.readouterr().out


# --- how it is deployed ---------------------------------------------------------------------------

@pulumi.runtime.test
def test_the_rollback_cronjob_runs_every_minute_with_least_privilege(mocks, config):
    cfg = config(orchestrator="k3s")
    controller = K8sRollback("rb", {"image": "reg/app:1", "namespace": NS, "labels": cfg.labels, "after_s": 120})

    def check(_):
        job = mocks.of("kubernetes:batch/v1:CronJob")["rb-cronjob"]["spec"]
        assert job["schedule"] == "* * * * *" and job["concurrencyPolicy"] == "Forbid"
        pod = job["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "rollback"
        (c,) = pod["containers"]
        assert c["command"] == ["python3", "-m", "sampleapp.rollback"] and c["image"] == "reg/app:1"
        assert {e["name"]: e.get("value") for e in c["env"]}["PHOENIX_ROLLBACK_AFTER"] == "120"
        assert c["securityContext"]["runAsNonRoot"] is True
        (role,) = mocks.of("kubernetes:rbac.authorization.k8s.io/v1:Role").values()
        assert role["metadata"]["namespace"] == NS
        rules = sorted((tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"]))) for r in role["rules"])
        assert rules == [(("apps",), ("deployments",), ("list", "patch")), (("apps",), ("replicasets",), ("list",))]
        assert not mocks.of("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    return settled(controller.cronjob, controller.binding).apply(check)

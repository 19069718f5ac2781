"""The Kubernetes semantics of the app against a real API server and the real Deployment, ReplicaSet
and autoscaler controllers of the pinned Kubernetes release (scripts/k8s-toolchain.sh): the rollback
controller (images/app/sampleapp/rollback.py) undoes a stalled version, and the autoscaler alone
owns the replica count.

There is no scheduler and no kubelet, so no pod ever runs: every rollout stalls, which is exactly a
failing version. The objects are those the `local-k3s` stack renders (the app's `web` Deployment, the
rollback controller's ServiceAccount, Role and RoleBinding), applied with server-side apply as Pulumi
applies them; only the progress deadline is shortened. The controller runs one pass with the
ServiceAccount's own token, so its RBAC is what is tested.
"""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import pytest

from tests.k8s import apiserver
from tests.k8s.manifests import STACKS, render

APP_DIR = Path(__file__).resolve().parents[2] / "images" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from sampleapp import rollback  # noqa: E402
from sampleapp.phoenix import ApiError, k8s_api  # noqa: E402

reason = apiserver.missing_reason("kube-controller-manager")
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

NS = "phoenix"
PULUMI = "pulumi-kubernetes-stand-in"
"""The field manager of the applies here (pulumi-kubernetes uses one of its own)."""
DEADLINE_S = 12
"""Short, for a quick test (it must exceed the rendered minReadySeconds, as the API server checks)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    s = apiserver.ApiServer(tmp_path_factory.mktemp("rollback"))
    try:
        s.start()
        # The default ServiceAccount (pod admission wants it), Deployments and ReplicaSets; nothing runs pods.
        s.start_controllers("serviceaccount-controller", "deployment-controller", "replicaset-controller",
                            "horizontal-pod-autoscaler-controller")
        yield s
    finally:
        s.stop()


def apply(cluster, obj: dict, force: bool = False):
    return cluster.kubectl("apply", "--server-side", f"--field-manager={PULUMI}", *(["--force-conflicts"] if force else []),
                           "-f", "-", stdin=json.dumps(obj))


def get(cluster, *what: str) -> dict:
    done = cluster.kubectl("-n", NS, "get", *what, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait(what: str, predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen in {timeout:.0f} s")


def stalled(cluster, revision: str):
    d = get(cluster, "deployment", "web")
    return d["metadata"].get("annotations", {}).get(rollback.REVISION) == revision and rollback.deadline_exceeded(d)


def app_version(template: dict) -> str:
    (container,) = template["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}["APP_VERSION"]


@pytest.fixture(scope="module")
def rendered(cluster) -> dict[tuple[str, str], dict]:
    """The local-k3s stack's objects by (kind, name), its namespace created."""
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in render(STACKS / "Pulumi.local-k3s.yaml").objects}
    assert apply(cluster, by_kind[("Namespace", NS)]).returncode == 0
    return by_kind


def test_the_autoscaler_alone_sets_the_replicas_and_an_apply_keeps_its_count(cluster, rendered):
    api, hpa = rendered[("Deployment", "api")], rendered[("HorizontalPodAutoscaler", "api")]
    minimum = hpa["spec"]["minReplicas"]
    assert minimum > 1 and "replicas" not in api["spec"]
    for obj in (api, hpa):
        done = apply(cluster, obj)
        assert done.returncode == 0, done.stderr

    def scaled():
        return get(cluster, "deployment", "api")["spec"].get("replicas") == minimum
    wait(f"the autoscaler raising api to its minimum of {minimum}", scaled)
    # `pulumi up` again: the Deployment's apply leaves the count alone (a replicas field in it would
    # make Pulumi an owner of the count and set it back).
    done = apply(cluster, api)
    assert done.returncode == 0, done.stderr
    assert get(cluster, "deployment", "api")["spec"]["replicas"] == minimum
    managers = get(cluster, "deployment", "api", "--show-managed-fields")["metadata"]["managedFields"]
    owners = [m["manager"] for m in managers if '"f:replicas"' in json.dumps(m.get("fieldsV1", {}))]
    assert PULUMI not in owners and owners, managers
    # What that avoids: an apply carrying a count (the definition's replicas) sets the autoscaled count
    # back, on every `pulumi up` (the autoscaler's writes through /scale do not even conflict).
    with_count = copy.deepcopy(api)
    with_count["spec"]["replicas"] = 1
    reset = cluster.kubectl("apply", "--server-side", f"--field-manager={PULUMI}", "-o", "json", "-f", "-",
                            stdin=json.dumps(with_count))
    assert reset.returncode == 0 and json.loads(reset.stdout)["spec"]["replicas"] == 1, reset.stderr


def test_a_stalled_version_is_rolled_back_through_the_api_with_least_privilege(cluster, rendered):
    by_kind = rendered
    for key in (("ServiceAccount", "rollback"), ("Role", "rollback"), ("RoleBinding", "rollback")):
        done = apply(cluster, by_kind[key])
        assert done.returncode == 0, done.stderr
    web = copy.deepcopy(by_kind[("Deployment", "web")])
    web["spec"]["progressDeadlineSeconds"] = DEADLINE_S
    assert app_version(web["spec"]["template"]) == "1"

    token = cluster.kubectl("-n", NS, "create", "token", "rollback")
    assert token.returncode == 0, token.stderr
    host, port = cluster.server_address()
    api = k8s_api(host, str(port), token.stdout.strip(), str(cluster.ca_file()))
    with pytest.raises(ApiError) as denied:  # least privilege: pods are none of its business
        api.get(f"/api/v1/namespaces/{NS}/pods")
    assert denied.value.status == 403

    # Version 1 stalls too (no kubelet): a first version has nothing to go back to.
    assert apply(cluster, web).returncode == 0
    wait("version 1 stalled", lambda: stalled(cluster, "1"))
    assert rollback.rollback_pass(api, NS) == 0

    # Version 2: a new ReplicaSet beside the one of version 1, which keeps its pod (maxUnavailable 0).
    (container,) = web["spec"]["template"]["spec"]["containers"]
    container["env"] = [dict(e, value="2") if e["name"] == "APP_VERSION" else e for e in container["env"]]
    assert apply(cluster, web).returncode == 0
    wait("version 2 stalled", lambda: stalled(cluster, "2"))
    assert rollback.rollback_pass(api, NS) == 1

    def restored():
        d = get(cluster, "deployment", "web")
        rs = [r for r in get(cluster, "replicasets")["items"] if r["metadata"]["ownerReferences"][0]["name"] == "web"]
        current = max(rs, key=rollback.revision)
        # (On a cluster the failed ReplicaSet is then scaled to 0; here no pod is ever available, so
        # maxUnavailable 0 keeps it.)
        return d if (app_version(d["spec"]["template"]) == "1" and app_version(current["spec"]["template"]) == "1"
                     and rollback.revision(current) == 3 and current["spec"]["replicas"] >= 1) else None
    wait("version 1's ReplicaSet current again (revision 3)", restored)
    managers = get(cluster, "deployment", "web", "--show-managed-fields")["metadata"]["managedFields"]
    assert any(m["manager"] == rollback.FIELD_MANAGER for m in managers), managers

    # The next `pulumi up` applies version 2 again: without force its apply conflicts with the
    # controller's field manager; forced (the Deployments carry pulumi.com/patchForce) it goes through.
    assert web["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    conflict = apply(cluster, web)
    assert conflict.returncode != 0 and "conflict" in conflict.stderr.lower(), conflict.stderr
    done = apply(cluster, web, force=True)
    assert done.returncode == 0, done.stderr
    assert app_version(get(cluster, "deployment", "web")["spec"]["template"]) == "2"

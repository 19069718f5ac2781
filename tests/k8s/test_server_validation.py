"""Every object the Kubernetes stacks render is accepted by a real API server.

For each stack file whose orchestrator is not Swarm, with phoenix mode off and on (its CronJob and
RBAC exist only when on), the program runs under the unit-test mocks (tests/k8s/manifests.py) and
each `kubernetes:` resource becomes the object it stands for. A kube-apiserver of the pinned release
(scripts/k8s-toolchain.sh) then validates each with `kubectl apply --server-side --dry-run=server`,
as pulumi-kubernetes applies them (server-side apply): schema, unknown fields, value checks and
admission, exactly as a cluster would; a warning counts as a refusal. Namespaces and ServiceAccounts
are created for real, so that the objects in them pass namespace admission and the pods that each
workload's controller would create from its template (also checked, `--dry-run=server`) pass the
ServiceAccount admission.
"""
from __future__ import annotations

import copy
import json

import pytest

from tests.k8s import apiserver
from tests.k8s.manifests import kubernetes_stacks, pod_of, pod_template, render, stack_name

reason = apiserver.missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

STACKS = kubernetes_stacks()
FIELD_MANAGER = "phoenix-validation"
CREATED = ("Namespace", "ServiceAccount")
"""Kinds applied for real (no controller here deletes a namespace, so namespaces stay)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = apiserver.ApiServer(tmp_path_factory.mktemp("apiserver"))
    try:
        yield s.start()
    finally:
        s.stop()


def apply(server: apiserver.ApiServer, obj: dict, dry_run: bool = True):
    args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
    return server.kubectl(*args, *(["--dry-run=server"] if dry_run else []), stdin=json.dumps(obj))


def describe(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}"


def refusal(done) -> str | None:
    """The server's refusal or warning, None when it accepted silently."""
    warned = [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
    return done.stderr.strip() if done.returncode != 0 else ("\n".join(warned) or None)


@pytest.mark.parametrize("phoenix", [False, True], ids=["phoenix-off", "phoenix-on"])
@pytest.mark.parametrize("stack_file", STACKS, ids=[stack_name(f) for f in STACKS])
def test_every_rendered_object_is_accepted(server, stack_file, phoenix):
    rendered = render(stack_file, phoenix=phoenix)
    assert any(o["kind"] == "Deployment" for o in rendered.objects), "the stack renders no Deployment"
    created = [o for o in rendered.objects if o["kind"] in CREATED]
    created.sort(key=lambda o: o["kind"] != "Namespace")
    others = [o for o in rendered.objects if o["kind"] not in CREATED]
    pods = [pod_of(o) for o in others if pod_template(o) is not None]
    # What kube-controller-manager would add to each namespace (there is none here).
    defaults = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": n}}
                for n in {o["metadata"]["name"] for o in created if o["kind"] == "Namespace"}]
    refused = []
    try:
        for obj in created + defaults + others + pods:
            why = refusal(apply(server, obj, dry_run=obj["kind"] not in CREATED))
            if why:
                refused.append(f"{describe(obj)}: {why}")
    finally:
        # ServiceAccounts go again, so that the next render cannot lean on this one's.
        for sa in (o for o in created if o["kind"] == "ServiceAccount"):
            server.kubectl("delete", "serviceaccount", sa["metadata"]["name"], "-n", sa["metadata"].get("namespace", "default"),
                           "--ignore-not-found")
    assert not refused, "the API server refused:\n" + "\n".join(refused)
    assert not rendered.skipped, f"not validated (not single API objects): {rendered.skipped}"


@pytest.fixture(scope="module")
def deployment(server):
    """A Deployment the first Kubernetes stack renders, its namespace created."""
    if not STACKS:
        pytest.skip("no stack file with a Kubernetes orchestrator under stacks/")
    rendered = render(STACKS[0])
    for ns in (o for o in rendered.objects if o["kind"] == "Namespace"):
        assert apply(server, ns, dry_run=False).returncode == 0
    return next(o for o in rendered.objects if o["kind"] == "Deployment")


def test_a_valid_object_passes_where_its_broken_copies_fail(server, deployment):
    assert apply(server, deployment).returncode == 0


@pytest.mark.parametrize("breakage, error", [
    (lambda d: d["spec"].__setitem__("replicas", -1),
     "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("portz", []),
     # server-side apply names the list item by its key
     '.spec.template.spec.containers[name="%s"].portz: field not declared in schema'),
    (lambda d: d["spec"]["selector"]["matchLabels"].__setitem__("app.kubernetes.io/name", "other"),
     "spec.template.metadata.labels: Invalid value"),
], ids=["negative-replicas", "unknown-field", "selector-not-matching-template"])
def test_a_broken_object_is_refused_with_the_field_error(server, deployment, breakage, error):
    broken = copy.deepcopy(deployment)
    breakage(broken)
    error = error.replace("%s", broken["spec"]["template"]["spec"]["containers"][0]["name"])
    done = apply(server, broken)
    assert done.returncode != 0 and error in done.stderr, done.stderr


def test_a_pod_whose_service_account_is_missing_is_refused(server, deployment):
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["serviceAccountName"] = "missing"
    done = apply(server, pod_of(broken))
    assert done.returncode != 0 and 'serviceaccount "missing" not found' in done.stderr, done.stderr

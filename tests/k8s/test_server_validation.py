"""Every object the Kubernetes stacks render is accepted by a real API server.

For each stack file whose orchestrator is not Swarm, with phoenix mode off and on (its CronJob and
RBAC exist only when on), the program runs under the unit-test mocks (tests/k8s/manifests.py) and
each `kubernetes:` resource becomes the object it stands for. A kube-apiserver of the pinned release
(scripts/k8s-toolchain.sh) then validates each with `kubectl apply --server-side --dry-run=server`,
as pulumi-kubernetes applies them (server-side apply): schema, unknown fields, value checks and
admission, exactly as a cluster would; a warning counts as a refusal. Namespaces and ServiceAccounts
are created for real, so that the objects in them pass namespace admission and the pods that each
workload's controller would create from its template (also checked, `--dry-run=server`) pass the
ServiceAccount admission: each render gets namespaces of its own (`<name>-validation-<random>`, the
objects moved into them), deleted afterwards.

PHOENIX_VALIDATE_STACK=<stack> validates against that stack's live cluster instead (its kubeconfig
output): the kubeadm cycle of scripts/test.sh does so on ci-kubeadm, next to the app it runs.
"""
from __future__ import annotations

import copy
import json
import os
import secrets

import pytest

from tests.k8s import apiserver
from tests.k8s.manifests import kubernetes_stacks, pod_of, pod_template, render, stack_name

LIVE = os.environ.get("PHOENIX_VALIDATE_STACK", "")
reason = apiserver.missing_reason(needed=("kubectl",)) if LIVE else apiserver.missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

STACKS = kubernetes_stacks()
FIELD_MANAGER = "phoenix-validation"
CREATED = ("Namespace", "ServiceAccount")
"""Kinds applied for real (no controller here deletes a namespace, so namespaces stay)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if LIVE:
        try:
            live = apiserver.LiveCluster(LIVE)
        except LookupError as err:
            pytest.skip(str(err))
        yield live
        return
    s = apiserver.ApiServer(tmp_path_factory.mktemp("apiserver"))
    try:
        yield s.start()
    finally:
        s.stop()


def apply(server: apiserver.ApiServer | apiserver.LiveCluster, obj: dict, dry_run: bool = True):
    args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
    return server.kubectl(*args, *(["--dry-run=server"] if dry_run else []), stdin=json.dumps(obj))


def describe(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}"


def in_own_namespaces(objects: list[dict]) -> tuple[dict[str, str], list[dict]]:
    """(old name -> new name, the objects moved): namespaces of this render's own, unused before."""
    suffix = f"-validation-{secrets.token_hex(3)}"
    namespaces = {o["metadata"]["name"]: o["metadata"]["name"] + suffix for o in objects if o["kind"] == "Namespace"}
    return namespaces, [moved(o, namespaces) for o in objects]


def remove(server, namespaces: dict[str, str]) -> None:
    # A live cluster's namespace controller removes them with what is in them; a throwaway API
    # server keeps them terminating, and the next render uses namespaces of its own.
    server.kubectl("delete", "namespace", *namespaces.values(), "--ignore-not-found", "--wait=false")


def moved(obj: dict, namespaces: dict[str, str]) -> dict:
    """`obj` with every namespace it names (its own, a Namespace's name, a RoleBinding subject's) renamed."""
    def walk(value):
        if isinstance(value, dict):
            return {k: namespaces.get(v, v) if k == "namespace" and isinstance(v, str) else walk(v)
                    for k, v in value.items()}
        return [walk(v) for v in value] if isinstance(value, list) else value
    obj = walk(copy.deepcopy(obj))
    if obj["kind"] == "Namespace":
        obj["metadata"]["name"] = namespaces[obj["metadata"]["name"]]
    return obj


def refusal(done) -> str | None:
    """The server's refusal or warning, None when it accepted silently."""
    warned = [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
    return done.stderr.strip() if done.returncode != 0 else ("\n".join(warned) or None)


@pytest.mark.parametrize("phoenix", [False, True], ids=["phoenix-off", "phoenix-on"])
@pytest.mark.parametrize("stack_file", STACKS, ids=[stack_name(f) for f in STACKS])
def test_every_rendered_object_is_accepted(server, stack_file, phoenix):
    rendered = render(stack_file, phoenix=phoenix)
    assert any(o["kind"] == "Deployment" for o in rendered.objects), "the stack renders no Deployment"
    namespaces, objects = in_own_namespaces(rendered.objects)
    created = [o for o in objects if o["kind"] in CREATED]
    created.sort(key=lambda o: o["kind"] != "Namespace")
    others = [o for o in objects if o["kind"] not in CREATED]
    pods = [pod_of(o) for o in others if pod_template(o) is not None]
    # What kube-controller-manager adds to each namespace (a throwaway API server has none).
    defaults = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": n}}
                for n in namespaces.values()]
    refused = []
    try:
        for obj in created + defaults + others + pods:
            why = refusal(apply(server, obj, dry_run=obj["kind"] not in CREATED))
            if why:
                refused.append(f"{describe(obj)}: {why}")
    finally:
        remove(server, namespaces)
    assert not refused, "the API server refused:\n" + "\n".join(refused)
    assert not rendered.skipped, f"not validated (not single API objects): {rendered.skipped}"


@pytest.fixture(scope="module")
def deployment(server):
    """A Deployment the first Kubernetes stack renders, its namespace created."""
    if not STACKS:
        pytest.skip("no stack file with a Kubernetes orchestrator under stacks/")
    namespaces, objects = in_own_namespaces(render(STACKS[0]).objects)
    for ns in (o for o in objects if o["kind"] == "Namespace"):
        assert apply(server, ns, dry_run=False).returncode == 0
    yield next(o for o in objects if o["kind"] == "Deployment")
    remove(server, namespaces)


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

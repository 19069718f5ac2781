"""The conversion behind the API-server validation (tests/k8s): resources recorded by the mocks -> API objects,
and the references between rendered objects that no API server checks."""
import pytest

from tests.k8s.manifests import (
    SECRET_PLACEHOLDER, NotAnObject, api_version_kind, auto_name, dangling_references, kubernetes_stacks, manifest,
    plain, pod_of, render, stack_config)

SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s3cret"}


@pytest.mark.parametrize("token, expected", [
    ("kubernetes:apps/v1:Deployment", ("apps/v1", "Deployment")),
    ("kubernetes:core/v1:Service", ("v1", "Service")),
    ("kubernetes:core/v1:Namespace", ("v1", "Namespace")),
    ("kubernetes:networking.k8s.io/v1:Ingress", ("networking.k8s.io/v1", "Ingress")),
    ("kubernetes:rbac.authorization.k8s.io/v1:Role", ("rbac.authorization.k8s.io/v1", "Role")),
    ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", ("autoscaling/v2", "HorizontalPodAutoscaler")),
    ("kubernetes:batch/v1:CronJob", ("batch/v1", "CronJob")),
])
def test_type_token_gives_api_version_and_kind(token, expected):
    assert api_version_kind(token) == expected


@pytest.mark.parametrize("token", [
    "kubernetes:helm.sh/v3:Release", "kubernetes:yaml/v2:ConfigGroup", "kubernetes:yaml:ConfigFile",
    "kubernetes:apps/v1:DeploymentPatch", "kubernetes:core/v1:ConfigMapList", "docker:index/container:Container",
])
def test_what_is_not_one_api_object_is_named_not_converted(token):
    with pytest.raises(NotAnObject, match=token):
        api_version_kind(token)


def test_values_are_sent_as_the_provider_sends_them():
    assert plain({"port": 8080.0, "ratio": 0.5, "token": SECRET, "list": [1.0, "a"]}) == \
        {"port": 8080, "ratio": 0.5, "token": "s3cret", "list": [1, "a"]}
    with pytest.raises(ValueError, match="spec.image: unknown"):
        plain({"spec": {"image": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}})


def test_manifest_takes_kind_from_the_token_and_names_unnamed_objects_like_the_provider():
    obj = manifest("kubernetes:core/v1:ConfigMap", "phoenix-settings", {"data": {"a": "b"}})
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"},
                   "metadata": {"name": auto_name("phoenix-settings")}}
    assert auto_name("phoenix-settings").startswith("phoenix-settings-") and len(auto_name("x")) == 10


def test_inputs_contradicting_the_token_are_an_error():
    with pytest.raises(ValueError, match="inputs say apps/v1/StatefulSet"):
        manifest("kubernetes:apps/v1:Deployment", "d", {"apiVersion": "apps/v1", "kind": "StatefulSet"})


def test_a_custom_resource_is_converted_like_the_others():
    # pulumi_kubernetes.apiextensions.CustomResource registers as kubernetes:<apiVersion>:<kind>.
    obj = manifest("kubernetes:traefik.io/v1alpha1:Middleware", "cfg",
                   {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "m"}})
    assert (obj["apiVersion"], obj["kind"]) == ("traefik.io/v1alpha1", "Middleware")


def test_stack_discovery_takes_every_non_swarm_stack_and_masks_secrets(tmp_path):
    (tmp_path / "Pulumi.a.yaml").write_text("config:\n  phoenix:orchestrator: k3s\n")
    (tmp_path / "Pulumi.b.yaml").write_text("config:\n  phoenix:orchestrator: swarm\n")
    (tmp_path / "Pulumi.c.yaml").write_text("config:\n  phoenix:workers: 1\n")   # default: swarm
    (tmp_path / "Pulumi.d.yaml").write_text(
        "config:\n  phoenix:orchestrator: kubeadm\n  phoenix:sshPrivateKey:\n    secure: AAAA\n"
        "  phoenix:hosts:\n  - name: a\n")
    assert [f.name for f in kubernetes_stacks(tmp_path)] == ["Pulumi.a.yaml", "Pulumi.d.yaml"]
    config, secrets = stack_config(tmp_path / "Pulumi.d.yaml")
    assert config["phoenix:sshPrivateKey"] == SECRET_PLACEHOLDER and secrets == ["phoenix:sshPrivateKey"]
    assert config["phoenix:hosts"] == '[{"name": "a"}]'


def test_the_local_k3s_stack_renders_its_app_and_with_phoenix_mode_the_phoenix_cronjob_and_rbac():
    stack = next(f for f in kubernetes_stacks() if f.name == "Pulumi.local-k3s.yaml")
    off, on = render(stack, phoenix=False), render(stack, phoenix=True)
    assert off.objects[0]["kind"] == "Namespace"
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"} <= \
        {o["kind"] for o in off.objects}

    def named(r):
        return {(o["kind"], o["metadata"]["name"]) for o in r.objects}
    assert sorted(kind for kind, _ in named(on) - named(off)) == ["CronJob", "Role", "RoleBinding", "ServiceAccount"]
    web = next(o for o in off.objects if o["kind"] == "Service" and o["metadata"]["name"] == "web")
    assert web["spec"]["ports"][0]["port"] == 8080 and isinstance(web["spec"]["ports"][0]["port"], int)


def _app() -> list[dict]:
    labels = {"app": "web"}
    template = {"metadata": {"labels": labels}, "spec": {"serviceAccountName": "ctl", "containers": [{"name": "c"}]}}
    meta = {"namespace": "ns"}
    return [
        {"kind": "ServiceAccount", "metadata": {**meta, "name": "ctl"}},
        {"kind": "Role", "metadata": {**meta, "name": "ctl"}},
        {"kind": "RoleBinding", "metadata": {**meta, "name": "ctl"}, "roleRef": {"kind": "Role", "name": "ctl"},
         "subjects": [{"kind": "ServiceAccount", "name": "ctl", "namespace": "ns"}]},
        {"kind": "Deployment", "metadata": {**meta, "name": "web"}, "spec": {"template": template}},
        {"kind": "CronJob", "metadata": {**meta, "name": "job"},
         "spec": {"jobTemplate": {"spec": {"template": template}}}},
        {"kind": "Service", "metadata": {**meta, "name": "web"},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080}]}},
        {"kind": "PodDisruptionBudget", "metadata": {**meta, "name": "web"}, "spec": {"selector": {"matchLabels": labels}}},
        {"kind": "HorizontalPodAutoscaler", "metadata": {**meta, "name": "web"},
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}},
        {"kind": "Ingress", "metadata": {**meta, "name": "web"}, "spec": {"rules": [{"http": {"paths": [
            {"backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}}]}},
    ]


def test_a_consistent_app_has_no_dangling_reference():
    assert dangling_references(_app()) == []


def _without(kind: str) -> list[dict]:
    return [o for o in _app() if o["kind"] != kind]


@pytest.mark.parametrize("objs, problem", [
    (_without("ServiceAccount"), "RoleBinding ns/ctl: subject ServiceAccount ns/ctl is not rendered"),
    (_without("ServiceAccount"), "CronJob ns/job: serviceAccountName ctl is not rendered"),
    (_without("Role"), "RoleBinding ns/ctl: roleRef Role ctl is not rendered"),
    (_without("Service"), "Ingress ns/web: backend Service web is not rendered"),
    (_without("Deployment"), "HorizontalPodAutoscaler ns/web: scaleTargetRef Deployment/web is not rendered"),
    ([o for o in _app() if o["kind"] not in ("Deployment", "CronJob")],
     "Service ns/web: selector {'app': 'web'} selects no rendered pod template"),
    ([o for o in _app() if o["kind"] not in ("Deployment", "CronJob")],
     "PodDisruptionBudget ns/web: selector {'app': 'web'} selects no rendered pod template"),
], ids=["binding-subject", "pod-service-account", "role", "ingress-backend", "hpa-target", "service-selector",
        "pdb-selector"])
def test_each_dangling_reference_is_named(objs, problem):
    assert problem in dangling_references(objs)


def test_an_ingress_backend_port_the_service_lacks_is_named():
    objs = _app()
    objs[-1]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 80}
    assert dangling_references(objs) == ["Ingress ns/web: Service web has no port {'number': 80}"]


def test_the_pod_of_a_cronjob_comes_from_its_job_template():
    pod = pod_of(next(o for o in _app() if o["kind"] == "CronJob"))
    assert pod["kind"] == "Pod" and pod["metadata"] == {"labels": {"app": "web"}, "name": "job-cronjob-pod",
                                                         "namespace": "ns"}
    assert pod["spec"]["serviceAccountName"] == "ctl"


@pytest.mark.parametrize("phoenix", [False, True])
def test_the_kubernetes_stacks_render_no_dangling_reference(phoenix):
    for stack in kubernetes_stacks():
        assert dangling_references(render(stack, phoenix=phoenix).objects) == [], stack.name

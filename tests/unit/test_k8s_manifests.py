"""The conversion behind the API-server validation (tests/k8s): resources recorded by the mocks -> API objects."""
import pytest

from tests.k8s.manifests import (
    SECRET_PLACEHOLDER, NotAnObject, api_version_kind, auto_name, kubernetes_stacks, manifest, plain,
    render, stack_config)

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

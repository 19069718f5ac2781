"""Phoenix mode rendered for Swarm (a controller service on the managers) and Kubernetes (a CronJob
with least-privilege RBAC), from the stack config, and nothing at all when phoenix mode is off."""
import pulumi
import pytest

from components.apps.phoenix import K8sPhoenix, SwarmPhoenix, cron_schedule, k8s_phoenix, swarm_phoenix
from tests.unit.conftest import settled

SERVICE = "docker:index/service:Service"
IMAGE = "reg:5000/phoenix/sample-app:abc"


def swarm(config, **raw):
    cfg = config(**raw)
    return cfg, swarm_phoenix("px", cfg.app, IMAGE, cfg.labels)


def k8s(config, **raw):
    cfg = config(orchestrator="k3s", **raw)
    return cfg, k8s_phoenix("px", cfg.app, IMAGE, cfg.labels, "phoenix")


@pulumi.runtime.test
def test_swarm_controller_runs_on_a_manager_with_the_docker_socket(mocks, config):
    cfg, phoenix = swarm(config, phoenix=True, phoenixInterval=45, phoenixServices=["web"])
    assert isinstance(phoenix, SwarmPhoenix)

    def check(_):
        s = mocks.of(SERVICE)["px-service"]
        task, spec = s["taskSpec"], s["taskSpec"]["containerSpec"]
        assert s["name"] == "phoenix"
        assert s["mode"] == {"replicated": {"replicas": 1}}
        assert task["placement"]["constraints"] == ["node.role==manager"]
        assert spec["mounts"] == [{"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]
        assert spec["image"] == IMAGE
        assert spec["commands"] == ["python3", "-m", "sampleapp.phoenix", "swarm"]
        assert spec["env"]["PHOENIX_INTERVAL"] == "45" and spec["env"]["PHOENIX_SERVICES"] == "web"
        assert spec["healthcheck"]["tests"] == ["CMD", "python3", "-m", "sampleapp.phoenix", "healthcheck"]
        assert task["restartPolicy"]["condition"] == "any"
        # Never two controllers at once: the old one stops before the new one starts.
        assert s["updateConfig"]["order"] == "stop-first"
        labels = {l["label"]: l["value"] for l in s["labels"]}
        assert labels["io.phoenix.stack"] == "test" and labels["io.phoenix.service"] == "phoenix"
    return settled(phoenix.service).apply(check)


@pulumi.runtime.test
def test_swarm_default_services_are_web_and_api(mocks, config):
    cfg, phoenix = swarm(config, phoenix=True)

    def check(_):
        env = mocks.of(SERVICE)["px-service"]["taskSpec"]["containerSpec"]["env"]
        assert env["PHOENIX_SERVICES"] == "web,api" and env["PHOENIX_INTERVAL"] == "300"
    return settled(phoenix.service).apply(check)


def test_nothing_is_rendered_when_phoenix_is_off(mocks, config):
    _, s = swarm(config)
    _, k = k8s(config)
    assert s is None and k is None
    assert mocks.resources == []


@pulumi.runtime.test
def test_the_swarm_deployment_adds_the_controller_only_in_phoenix_mode(mocks, config, monkeypatch):
    from components.apps.spec import sample_services
    from components.nodes.node import DockerExec, Node
    from components.orchestrators import swarm as orchestrator

    made = []
    real = orchestrator.swarm_phoenix
    monkeypatch.setattr(orchestrator, "swarm_phoenix", lambda *a, **k: made.append(real(*a, **k)) or made[-1])

    def deploy(name, **raw):
        cfg = config(**raw)
        nodes = [Node(name=f"{name}-m0", role="manager", address="10.0.0.10", connection=DockerExec(f"{name}-m0"),
                      docker_host=f"unix:///tmp/{name}.sock", public_address="127.0.0.1")]
        orchestrator.ORCHESTRATOR.deploy(name, cfg, nodes, sample_services(cfg.app), IMAGE, pulumi.ResourceOptions())

    deploy("on", phoenix=True)
    deploy("off")
    assert made[1] is None

    def check(_):
        names = set(mocks.of(SERVICE))
        assert "on-phoenix-service" in names and "off-phoenix-service" not in names
        assert mocks.of(SERVICE)["on-phoenix-service"]["taskSpec"]["containerSpec"]["image"] == IMAGE
    return settled(made[0].service).apply(check)


@pytest.mark.parametrize("interval, schedule", [
    (10, "* * * * *"), (60, "* * * * *"), (89, "* * * * *"), (300, "*/5 * * * *"), (900, "*/15 * * * *"),
    (3600, "0 */1 * * *"), (7200, "0 */2 * * *"), (86_400, "0 0 * * *"),
])
def test_cronjob_schedule_follows_the_interval(interval, schedule):
    assert cron_schedule(interval) == schedule


@pulumi.runtime.test
def test_k8s_cronjob_runs_the_controller_once_per_interval(mocks, config):
    cfg, phoenix = k8s(config, phoenix=True, phoenixInterval=600, phoenixServices=["api"])
    assert isinstance(phoenix, K8sPhoenix)

    def check(_):
        job = mocks.of("kubernetes:batch/v1:CronJob")["px-cronjob"]
        spec = job["spec"]
        assert spec["schedule"] == "*/10 * * * *"
        assert spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "phoenix" and pod["restartPolicy"] == "Never"
        (c,) = pod["containers"]
        assert c["image"] == IMAGE and c["command"] == ["python3", "-m", "sampleapp.phoenix", "k8s"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["PHOENIX_SERVICES"] == "api"
        assert c["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert job["metadata"]["namespace"] == "phoenix"
    return settled(phoenix.cronjob).apply(check)


@pulumi.runtime.test
def test_k8s_rbac_grants_exactly_what_the_controller_needs(mocks, config):
    cfg, phoenix = k8s(config, phoenix=True)

    def check(_):
        assert not mocks.of("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"), "namespace-scoped only"
        assert not mocks.of("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
        (role,) = mocks.of("kubernetes:rbac.authorization.k8s.io/v1:Role").values()
        assert role["metadata"]["namespace"] == "phoenix"
        rules = sorted((tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"]))) for r in role["rules"])
        assert rules == [(("",), ("pods",), ("get", "list")), (("",), ("pods/eviction",), ("create",))]
        assert all("resourceNames" not in r and "*" not in r["verbs"] for r in role["rules"])
        (binding,) = mocks.of("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").values()
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "phoenix"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "phoenix", "namespace": "phoenix"}]
        (sa,) = mocks.of("kubernetes:core/v1:ServiceAccount").values()
        assert sa["metadata"]["name"] == "phoenix" and sa["metadata"]["namespace"] == "phoenix"
    return settled(phoenix.cronjob, phoenix.binding).apply(check)

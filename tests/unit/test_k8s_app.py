"""The sample app on Kubernetes under mocks: every container probed and bounded, rollouts that never
dip below the replica count, autoscaler/disruption budget/Ingress from the stack config, and the same
replicas, ports and probe paths as the Swarm rendering of the same definition."""
import dataclasses

import pulumi
import pytest

from components.apps.k8s_app import DRAIN_S, K8sApp, validate
from components.apps.spec import Probe, sample_services
from components.apps.swarm_app import SwarmApp
from tests.unit.test_k3s import Recording, graph  # noqa: F401 (the `graph` fixture)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def render(config, **raw):
    cfg = config(orchestrator="k3s", **raw)
    services = sample_services(cfg.app)
    app = K8sApp("app", {"services": services, "image": "reg:5000/phoenix/sample-app:abc", "app": cfg.app,
                         "labels": cfg.labels})
    return cfg, services, app


def done(app: K8sApp) -> pulumi.Output:
    """Resolves once every object of the app is registered."""
    objects = [app.ingress, *app.deployments.values(), *app.services.values(), *app.autoscalers.values(),
               *app.budgets.values()]
    return pulumi.Output.all(*[o.urn for o in objects])


def pod(inputs) -> dict:
    return inputs["spec"]["template"]["spec"]


@pulumi.runtime.test
def test_every_container_has_probes_resources_and_the_spec_values(graph, config):
    _, services, app = render(config)

    def check(_):
        deployments = graph.mocks.of(DEPLOYMENT)
        assert sorted(deployments) == ["app-api", "app-web"]
        for s in services:
            d = deployments[f"app-{s.name}"]
            assert d["metadata"]["name"] == s.name and d["metadata"]["namespace"] == "phoenix"
            (c,) = pod(d)["containers"]
            assert c["image"] == "reg:5000/phoenix/sample-app:abc"
            assert c["command"] == ["python3", "-m", f"sampleapp.{s.name}"]
            assert c["ports"] == [{"name": "http", "containerPort": s.port, "protocol": "TCP"}]
            for key, probe in (("livenessProbe", s.liveness), ("readinessProbe", s.readiness)):
                assert c[key]["httpGet"] == {"path": probe.path, "port": s.port}, key
                assert (c[key]["periodSeconds"], c[key]["timeoutSeconds"], c[key]["failureThreshold"]) == \
                    (probe.period_s, probe.timeout_s, probe.failures)
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": s.port}
            assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] == s.liveness.start_grace_s
            r = s.resources
            assert c["resources"] == {
                "requests": {"cpu": f"{r.request_cpu_millis}m", "memory": f"{r.request_memory_mb}Mi"},
                "limits": {"cpu": f"{r.cpu_millis}m", "memory": f"{r.memory_mb}Mi"}}
            env = {e["name"]: e for e in c["env"]}
            assert {k: env[k]["value"] for k in s.env} == dict(s.env)
            assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
            assert pod(d)["terminationGracePeriodSeconds"] == DRAIN_S + s.stop_grace_s  # the drain, then the definition's grace
    return done(app).apply(check)


@pulumi.runtime.test
def test_rolling_update_never_below_replicas_and_pods_spread_over_nodes(graph, config):
    _, services, app = render(config, webReplicas=4)

    def check(_):
        for s in services:
            d = graph.mocks.of(DEPLOYMENT)[f"app-{s.name}"]
            spec = d["spec"]
            assert spec["strategy"] == {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": s.update.max_surge}}
            assert spec["minReadySeconds"] == s.update.monitor_s
            labels = spec["selector"]["matchLabels"]
            assert labels.items() <= spec["template"]["metadata"]["labels"].items()
            (spread,) = pod(d)["topologySpreadConstraints"]
            assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
            assert spread["labelSelector"]["matchLabels"] == labels
            # A rollout that stalls fails after the deadline (and is rolled back: test_rollback.py).
            assert spec["progressDeadlineSeconds"] == s.update.progress_deadline_s
            assert s.update.progress_deadline_s > s.liveness.start_grace_s + s.update.monitor_s
            # `pulumi up` gives up on a stalled rollout after the deadline, and before the rollback
            # controller undoes it (undone earlier, the await would see the old version and succeed).
            timeouts = graph.requests[f"app-{s.name}"].customTimeouts
            assert timeouts.create == timeouts.update == f"{s.update.rollout_timeout_s}s"
            assert s.update.progress_deadline_s < s.update.rollout_timeout_s
            assert s.update.progress_deadline_s + s.update.rollback_after_s >= s.update.rollout_timeout_s + 60
    return done(app).apply(check)


def each_deployment(graph, config, check_one) -> pulumi.Output:
    """Renders the sample app and runs `check_one(service spec, Deployment inputs)` for every service."""
    _, services, app = render(config)

    def check(_):
        for s in services:
            check_one(s, graph.mocks.of(DEPLOYMENT)[f"app-{s.name}"])
    return done(app).apply(check)


@pulumi.runtime.test
def test_a_deleted_pod_serves_through_the_drain_then_stops_within_the_definitions_grace(graph, config):
    def check(s, d):
        (c,) = pod(d)["containers"]
        assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": DRAIN_S}}}
        assert DRAIN_S >= 5
        # The grace counts from the deletion: the drain, then the app's own stop after SIGTERM.
        assert pod(d)["terminationGracePeriodSeconds"] == DRAIN_S + s.stop_grace_s
    return each_deployment(graph, config, check)


@pulumi.runtime.test
def test_pods_of_a_lost_node_are_replaced_within_seconds_not_five_minutes(graph, config):
    def check(s, d):
        by_key = {t["key"]: t for t in pod(d)["tolerations"] if t["effect"] == "NoExecute"}
        assert set(by_key) == {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}
        for t in by_key.values():
            assert t["operator"] == "Exists" and t["effect"] == "NoExecute"
            assert 0 < t["tolerationSeconds"] <= 10, t
    return each_deployment(graph, config, check)


@pulumi.runtime.test
def test_pods_may_run_on_control_plane_nodes_as_swarm_tasks_on_managers(graph, config):
    def check(s, d):
        assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"} \
            in pod(d)["tolerations"]
    return each_deployment(graph, config, check)


@pulumi.runtime.test
def test_the_autoscaler_alone_owns_the_replica_count(graph, config):
    _, services, app = render(config, webReplicas=4, apiReplicas=2, autoscaleMax=6)

    def check(_):
        for s in services:
            d = graph.mocks.of(DEPLOYMENT)[f"app-{s.name}"]
            # Server-side apply: a replicas field here would make Pulumi co-own what the autoscaler writes.
            assert "replicas" not in d["spec"], "the Deployment must leave spec.replicas to the autoscaler"
            assert not graph.requests[f"app-{s.name}"].ignoreChanges
            hpa = graph.mocks.of(HPA)[f"app-{s.name}-hpa"]["spec"]
            assert hpa["minReplicas"] == s.replicas and hpa["scaleTargetRef"]["name"] == d["metadata"]["name"]
        assert graph.mocks.of(HPA)["app-web-hpa"]["spec"]["minReplicas"] == 4
    return done(app).apply(check)


@pulumi.runtime.test
def test_pulumi_takes_back_the_template_after_a_rollback(graph, config):
    _, services, app = render(config)

    def check(_):
        for s in services:
            # The rollback controller writes the template with its own field manager; without a forced
            # apply the next `pulumi up` would fail on that conflict instead of deploying the new version.
            assert graph.mocks.of(DEPLOYMENT)[f"app-{s.name}"]["metadata"]["annotations"] == \
                {"pulumi.com/patchForce": "true"}
    return done(app).apply(check)


@pulumi.runtime.test
def test_services_select_their_pods_on_the_spec_port(graph, config):
    _, services, app = render(config)

    def check(_):
        for s in services:
            svc = graph.mocks.of(SERVICE)[f"app-{s.name}-svc"]
            d = graph.mocks.of(DEPLOYMENT)[f"app-{s.name}"]
            assert svc["metadata"]["name"] == s.name, "other services reach it by this DNS name"
            assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
            assert svc["spec"]["ports"] == [{"name": "http", "port": s.port, "targetPort": "http", "protocol": "TCP"}]
            # Headless: the name resolves to every ready pod, so a caller can move on from a silent one.
            assert svc["spec"]["clusterIP"] == "None"
        web = graph.mocks.of(DEPLOYMENT)["app-web"]
        api_url = {e["name"]: e.get("value") for e in pod(web)["containers"][0]["env"]}["API_URL"]
        assert api_url == "http://api:8081"
    return done(app).apply(check)


@pulumi.runtime.test
def test_autoscaler_and_disruption_budget_follow_the_stack_config(graph, config):
    _, services, app = render(config, webReplicas=3, apiReplicas=3, autoscaleMax=9, minAvailable=2)

    def check(_):
        for s in services:
            hpa = graph.mocks.of(HPA)[f"app-{s.name}-hpa"]["spec"]
            assert hpa["minReplicas"] == s.replicas == 3 and hpa["maxReplicas"] == 9
            assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.name}
            assert hpa["metrics"][0]["resource"]["name"] == "cpu"
            pdb = graph.mocks.of(PDB)[f"app-{s.name}-pdb"]["spec"]
            assert pdb["minAvailable"] == 2
            assert pdb["selector"]["matchLabels"] == graph.mocks.of(DEPLOYMENT)[f"app-{s.name}"]["spec"]["selector"]["matchLabels"]
    return done(app).apply(check)


@pulumi.runtime.test
def test_ingress_routes_everything_to_the_entry_service_through_traefik(graph, config):
    _, services, app = render(config)

    def check(_):
        (ingress,) = graph.mocks.of(INGRESS).values()
        spec = ingress["spec"]
        assert spec["ingressClassName"] == "traefik"
        (path,) = spec["rules"][0]["http"]["paths"]
        assert path["path"] == "/" and path["pathType"] == "Prefix"
        entry = next(s for s in services if s.entry)
        assert path["backend"]["service"] == {"name": entry.name, "port": {"number": entry.port}}
    return done(app).apply(check)


@pulumi.runtime.test
def test_swarm_and_kubernetes_agree_on_replicas_ports_and_probe_paths(graph, config):
    cfg = config(orchestrator="k3s", webReplicas=5, apiReplicas=3, autoscaleMax=8)
    services = sample_services(cfg.app)
    k8s_app = K8sApp("k", {"services": services, "image": "img:1", "app": cfg.app, "labels": {}})
    swarm_app = SwarmApp("s", {"services": services, "image": "img:1", "app": cfg.app, "labels": {}})

    def check(_):
        swarm = graph.mocks.of("docker:index/service:Service")
        kube = graph.mocks.of(DEPLOYMENT)
        for s in services:
            sw, k = swarm[f"s-{s.name}"], kube[f"k-{s.name}"]
            hpa = graph.mocks.of(HPA)[f"k-{s.name}-hpa"]["spec"]
            assert sw["mode"]["replicated"]["replicas"] == hpa["minReplicas"] == s.replicas
            health = sw["taskSpec"]["containerSpec"]["healthcheck"]["tests"]
            (c,) = pod(k)["containers"]
            # Swarm's health check runs the probe command against the same port and path.
            assert health[-2:] == [str(int(c["livenessProbe"]["httpGet"]["port"])), c["livenessProbe"]["httpGet"]["path"]]
            assert c["ports"][0]["containerPort"] == s.port
            assert sw["taskSpec"]["containerSpec"]["commands"] == c["command"]
            assert {k: v for k, v in sw["taskSpec"]["containerSpec"]["env"].items() if k != "NODE_NAME"} == \
                {e["name"]: e["value"] for e in c["env"] if "value" in e}
        entry = next(s for s in services if s.entry)
        ports = swarm[f"s-{entry.name}"]["endpointSpec"]["ports"]
        ingress = next(iter(graph.mocks.of(INGRESS).values()))
        assert ports[0]["targetPort"] == ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"]
    return pulumi.Output.all(done(k8s_app), *[s.urn for s in swarm_app.services.values()]).apply(check)


# --- definitions Kubernetes cannot run as meant ----------------------------------------------------

def test_a_probe_without_a_port_is_refused(config):
    services = sample_services(config().app)
    broken = [dataclasses.replace(services[0], readiness=Probe("/readyz", 0)), services[1]]
    with pytest.raises(ValueError, match="api: readiness probe /readyz has no port; set it to the service port 8081"):
        validate(broken)


def test_a_probe_on_another_port_and_a_relative_path_are_refused(config):
    services = sample_services(config().app)
    broken = [dataclasses.replace(services[1], liveness=Probe("healthz", 9999)), services[0]]
    with pytest.raises(ValueError) as err:
        validate(broken)
    assert "web: liveness probe port 9999 is not the service port 8080" in str(err.value)
    assert "web: liveness probe path 'healthz' must start with '/'" in str(err.value)


def test_exactly_one_entry_service(config):
    services = sample_services(config().app)
    with pytest.raises(ValueError, match="exactly one entry service"):
        validate([s for s in services if not s.entry])


def test_the_sample_definition_is_valid(config):
    validate(sample_services(config(orchestrator="k3s").app))


@pytest.mark.parametrize("kind", ["liveness", "readiness"])
def test_probes_ride_out_a_slow_answer(config, kind):
    # A container capped at 250m CPU can answer one check late: that must not take it out of the load
    # balancer or restart it. Several misses in a row (at least 5 s of them) do.
    for s in sample_services(config().app):
        probe = getattr(s, kind)
        assert probe.failures >= 3, f"{s.name} {kind} fails after {probe.failures} missed check(s)"
        assert probe.timeout_s >= 2 and probe.period_s * probe.failures >= 5, (s.name, kind, probe)


@pulumi.runtime.test
def test_destroy_asks_for_the_namespace_to_go_without_waiting_for_its_finalization(graph, config):
    _, _, app = render(config)

    def check(_):
        (ns,) = graph.mocks.of("kubernetes:core/v1:Namespace").values()
        assert ns["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    return done(app).apply(check)

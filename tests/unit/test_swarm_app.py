"""The sample app as Swarm services: replicas, health, update/rollback policy, limits, network, ports."""
import pulumi
import pytest

from components.apps.spec import sample_services
from components.apps.swarm_app import EDGE_PORT, SwarmApp
from tests.unit.conftest import settled

SERVICE = "docker:index/service:Service"


def build(config, **raw):
    cfg = config(**raw)
    app = SwarmApp("app", {"services": sample_services(cfg.app), "image": "reg:5000/phoenix/sample-app:abc",
                           "app": cfg.app, "labels": cfg.labels})
    return app, settled(*app.services.values())


@pulumi.runtime.test
def test_replicas_come_from_the_stack(mocks, config):
    app, done = build(config, webReplicas=4, apiReplicas=2)

    def check(_):
        services = mocks.of(SERVICE)
        assert services["app-web"]["mode"]["replicated"]["replicas"] == 4
        assert services["app-api"]["mode"]["replicated"]["replicas"] == 2
    return done.apply(check)


@pulumi.runtime.test
def test_every_service_has_a_health_check_on_healthz(mocks, config):
    app, done = build(config)

    def check(_):
        for name, s in mocks.of(SERVICE).items():
            spec = s["taskSpec"]["containerSpec"]
            health = spec["healthcheck"]
            assert health["tests"][:4] == ["CMD", "python3", "-m", "sampleapp.probe"], name
            assert health["tests"][-1] == "/healthz"
            # The same numbers as the Kubernetes liveness and startup probes (spec.py holds them once).
            assert (health["interval"], health["timeout"], health["retries"], health["startPeriod"]) == \
                ("2s", "4s", 3, "10s")
            assert spec["image"] == "reg:5000/phoenix/sample-app:abc"
            assert spec["env"]["NODE_NAME"] == "{{.Node.Hostname}}"
    return done.apply(check)


@pulumi.runtime.test
def test_rolling_update_starts_new_before_old_and_rolls_back_on_failure(mocks, config):
    app, done = build(config)

    def check(_):
        for s in mocks.of(SERVICE).values():
            update, rollback = s["updateConfig"], s["rollbackConfig"]
            assert update == {"parallelism": 1, "delay": "2s", "failureAction": "rollback", "monitor": "10s",
                              "maxFailureRatio": "0.0", "order": "start-first"}
            assert rollback["order"] == "start-first" and rollback["failureAction"] == "pause"
            assert s["taskSpec"]["restartPolicy"]["condition"] == "any"
            assert s["taskSpec"]["restartPolicy"]["delay"] == "500ms", "replaced quickly, but not in a busy loop"
    return done.apply(check)


@pulumi.runtime.test
def test_limits_network_and_spread(mocks, config):
    app, done = build(config)

    def check(_):
        network = mocks.of("docker:index/network:Network")["app-net"]
        assert network["driver"] == "overlay" and network["attachable"] is True
        for s in mocks.of(SERVICE).values():
            task = s["taskSpec"]
            assert task["resources"]["limits"] == {"nanoCpus": 250_000_000, "memoryBytes": 96 * 1024 * 1024}
            assert task["resources"]["reservation"]["memoryBytes"] == 32 * 1024 * 1024
            assert task["networksAdvanceds"] == [{"id": "app-net-id"}]
            assert task["placement"]["prefs"] == ["spread=node.labels.phoenix.node"]
    return done.apply(check)


@pulumi.runtime.test
def test_web_calls_api_by_service_name(mocks, config):
    app, done = build(config, appVersion="7")

    def check(_):
        env = mocks.of(SERVICE)["app-web"]["taskSpec"]["containerSpec"]["env"]
        assert env["API_URL"] == "http://api:8081" and env["APP_VERSION"] == "7"
    return done.apply(check)


@pulumi.runtime.test
def test_vip_mode_publishes_web_on_the_routing_mesh(mocks, config):
    app, done = build(config, endpointMode="vip", publishedPort=9000)

    def check(_):
        services = mocks.of(SERVICE)
        assert "app-edge" not in services
        assert services["app-web"]["endpointSpec"] == {"mode": "vip", "ports": [
            {"targetPort": 8080, "publishedPort": 9000, "publishMode": "ingress"}]}
        assert "ports" not in services["app-api"]["endpointSpec"]
    return done.apply(check)


@pulumi.runtime.test
def test_dnsrr_mode_publishes_an_edge_on_the_managers_in_host_mode(mocks, config):
    app, done = build(config, endpointMode="dnsrr", publishedPort=9000)

    def check(_):
        services = mocks.of(SERVICE)
        edge = services["app-edge"]
        assert edge["mode"] == {"global": True}
        assert "convergeConfig" not in edge  # the provider refuses convergence on global services
        assert edge["taskSpec"]["placement"]["constraints"] == ["node.role==manager"]
        assert edge["endpointSpec"] == {"mode": "dnsrr", "ports": [
            {"targetPort": EDGE_PORT, "publishedPort": 9000, "publishMode": "host"}]}
        # The old edge must free the host port before its replacement can bind it.
        assert edge["updateConfig"]["order"] == "stop-first"
        assert edge["taskSpec"]["containerSpec"]["env"]["UPSTREAM"] == "web:8080"
        for name in ("app-web", "app-api"):
            assert services[name]["endpointSpec"] == {"mode": "dnsrr"}
    return done.apply(check)


@pytest.mark.parametrize("mode", ["vip", "dnsrr"])
def test_services_converge_before_up_returns(mocks, config, mode):
    @pulumi.runtime.test
    def inner():
        app, done = build(config, endpointMode=mode)
        return done.apply(lambda _: [
            s["convergeConfig"] == {"delay": "1s", "timeout": "180s"} or pytest.fail(f"{n} does not converge")
            for n, s in mocks.of(SERVICE).items() if "replicated" in s["mode"]])
    inner()


@pulumi.runtime.test
def test_services_go_through_the_provider_given_to_the_component(mocks, config):
    import pulumi_docker as docker
    cfg = config()
    provider = docker.Provider("manager", host="unix:///tmp/m0/docker.sock")
    app = SwarmApp("app", {"services": sample_services(cfg.app), "image": "img", "app": cfg.app,
                           "labels": cfg.labels}, pulumi.ResourceOptions(provider=provider))

    def check(_):
        for r in mocks.resources:
            if r.typ in (SERVICE, "docker:index/network:Network"):
                assert r.provider and "manager" in r.provider, f"{r.name} uses {r.provider!r}"
    return settled(*app.services.values()).apply(check)


@pytest.mark.parametrize("image, platforms", [
    ("reg:5000/phoenix/sample-app:abc@sha256:" + "d" * 64, [{"architecture": "amd64", "os": "linux"}]),
    ("phoenix/sample-app:abc", []),
])
def test_services_carry_the_platforms_swarm_records_for_a_registry_image(mocks, config, monkeypatch, image, platforms):
    # Swarm fills them in when it resolves the image in a registry: sent as read back, a refresh changes nothing.
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    cfg = config()

    @pulumi.runtime.test
    def run():
        app = SwarmApp("app", {"services": sample_services(cfg.app), "image": image, "app": cfg.app, "labels": cfg.labels})

        def check(_):
            for s in mocks.of(SERVICE).values():
                assert s["taskSpec"]["placement"].get("platforms", []) == platforms
        return settled(*app.services.values()).apply(check)
    run()

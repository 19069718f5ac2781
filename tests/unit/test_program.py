"""The whole program (__main__.py) under mocks: stack outputs, and no secret in a plain output."""
import json
import runpy
from pathlib import Path

import pulumi
import pytest

from tests.unit.conftest import APP_IMAGE_ID, MANAGER_TOKEN, WORKER_TOKEN

PROGRAM = Path(__file__).resolve().parents[2] / "__main__.py"


@pytest.fixture
def exports(monkeypatch):
    captured = {}
    monkeypatch.setattr(pulumi, "export", lambda key, value: captured.__setitem__(key, value))
    return captured


def run_program(**config) -> dict:
    """Run __main__.py with the given stack config; returns the program's globals."""
    pulumi.runtime.set_all_config({f"phoenix:{k}": v if isinstance(v, str) else json.dumps(v)
                                   for k, v in config.items()})
    return runpy.run_path(str(PROGRAM))


@pulumi.runtime.test
def test_outputs_of_the_local_swarm_stack(mocks, exports):
    run_program(workers=2, publishedPort=8080)

    def check(values):
        outputs = dict(zip(sorted(exports), values))
        assert outputs["appUrl"] == "http://127.0.0.1:8080/"
        assert outputs["managerAddress"] == "172.28.0.10"
        assert outputs["orchestrator"] == "swarm"
        assert outputs["dockerHost"] == "unix:///tmp/phoenix/test-m0/docker.sock"
        assert [(n["name"], n["role"], n["uri"]) for n in outputs["nodes"]] == [
            ("test-m0", "manager", "docker://test-m0"), ("test-w1", "worker", "docker://test-w1"),
            ("test-w2", "worker", "docker://test-w2")]
    return pulumi.Output.all(*[exports[k] for k in sorted(exports)]).apply(check)


@pulumi.runtime.test
def test_join_tokens_are_exported_only_as_secrets(mocks, exports):
    run_program()

    async def check():
        for key, value in exports.items():
            output = pulumi.Output.from_input(value)
            text = json.dumps(await output.future(with_unknowns=True), default=str)
            leaks = WORKER_TOKEN in text or MANAGER_TOKEN in text
            if key in ("swarmWorkerToken", "swarmManagerToken"):
                assert await output.is_secret(), key
            else:
                assert not leaks, f"{key} shows a join token"
        assert {"swarmWorkerToken", "swarmManagerToken"} <= exports.keys()
    return pulumi.Output.from_input(exports["appUrl"]).apply(lambda _: check())


def test_bad_config_stops_the_program_before_any_resource(mocks, exports):
    # RunError: the engine prints the message alone, without a Python traceback.
    with pytest.raises(pulumi.RunError, match="phoenix:managers = 2 is invalid"):
        run_program(managers=2)
    assert mocks.resources == [] and exports == {}


HOSTS = [{"name": "a", "address": "192.0.2.10", "role": "manager"}]


@pytest.mark.parametrize("substrate, config", [
    ("ssh", {"hosts": HOSTS}),
    ("cloud", {"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI phoenix@test",
               "cloud": {"adminCidrs": ["198.51.100.0/24"]}}),
])
def test_machines_refuse_the_built_in_passphrase_before_any_resource(mocks, exports, monkeypatch, substrate, config):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "local-dev-only")
    with pytest.raises(Exception, match="export PULUMI_CONFIG_PASSPHRASE=<passphrase>"):
        run_program(substrate=substrate, sshPrivateKey="k", **config)
    assert mocks.resources == [] and exports == {}


def test_machines_run_with_an_own_passphrase_and_local_stacks_with_the_built_in_one(mocks, exports, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    run_program(substrate="ssh", sshPrivateKey="k", hosts=HOSTS)
    assert "appUrl" in exports
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "local-dev-only")
    run_program()
    assert "appUrl" in exports


def test_a_misspelt_key_in_the_stack_config_is_refused(mocks, exports):
    # pulumi.Config reads only the keys it is asked for: the program must look at the whole map.
    with pytest.raises(pulumi.RunError, match="phoenix:webReplica = .*did you mean phoenix:webReplicas"):
        run_program(webReplica=3)
    assert mocks.resources == []


def test_the_value_of_a_misspelt_secret_key_is_not_shown(mocks, exports, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["phoenix:sshPrivatKey"]))
    with pytest.raises(pulumi.RunError) as err:
        run_program(sshPrivatKey="-----BEGIN OPENSSH PRIVATE KEY-----")
    assert "phoenix:sshPrivatKey = '(secret)'" in str(err.value)
    assert "BEGIN OPENSSH" not in str(err.value)


def test_keys_come_from_the_language_host_environment(mocks, monkeypatch):
    # What a real `pulumi up` does: the language host passes the stack's config as PULUMI_CONFIG.
    from components.config import stack_config

    pulumi.runtime.set_all_config({})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"phoenix:workers": "4", "phoenix:wokers": "5", "docker:host": "x"}))
    assert stack_config() == ({"workers": "4", "wokers": "5"}, frozenset())


@pulumi.runtime.test
def test_up_ends_with_the_check_that_the_entry_answers(mocks, exports):
    cluster = run_program(appVersion="7")["cluster"]

    def check(_):
        command = mocks.of("command:local:Command")["phoenix-ready-check"]
        assert command["create"].endswith(" - http://127.0.0.1:8080/ 7 180")
    return cluster.app_ready.message.apply(check)


def test_swarm_services_on_hosts_name_the_image_each_host_loaded(mocks, exports):
    # Runs to completion first: the services are registered once the loads on every host printed the ID.
    hosts = [{"name": "m0", "address": "192.0.2.10", "role": "manager"},
             {"name": "w1", "address": "192.0.2.11", "role": "worker"}]

    @pulumi.runtime.test
    def program():
        run_program(substrate="ssh", hosts=hosts, sshPrivateKey="KEY", endpointMode="dnsrr")
        return pulumi.Output.from_input(exports["appUrl"])

    program()
    services = mocks.of("docker:index/service:Service")
    assert services and {s["taskSpec"]["containerSpec"]["image"] for s in services.values()} == {APP_IMAGE_ID}
    loads = [k for k in mocks.of("command:local:Command") if "-load-" in k]
    assert sorted(loads) == ["phoenix-image-load-m0", "phoenix-image-load-w1"]


@pulumi.runtime.test
def test_ssh_hosts_export_the_engine_endpoint_and_its_client_credentials_as_a_secret(mocks, exports, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    run_program(substrate="ssh", sshPrivateKey="k", hosts=HOSTS)

    async def check():
        host = pulumi.Output.from_input(exports["dockerHost"])
        assert await host.future() == "tcp://192.0.2.10:2376" and not await host.is_secret()
        tls = pulumi.Output.from_input(exports["dockerTls"])
        assert await tls.is_secret()
        assert set(json.loads(await tls.future())) == {"ca", "cert", "key"}  # what `make context` writes
    return pulumi.Output.from_input(exports["appUrl"]).apply(lambda _: check())

"""Trust on SSH hosts: host keys pinned (from the config or recorded at first contact) on every SSH
connection, and the Docker provider reaching the manager's engine over mutual TLS only."""
import dataclasses
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pulumi
import pytest

from components.config import ConfigError
from components.nodes.engine import CERTS_SCRIPT, ENGINE_PORT, GATEWAY_SCRIPT
from components.nodes.ssh_hosts import HOSTKEY_SCRIPT
from components.orchestrators.swarm import Swarm
from tests.unit.conftest import ENGINE_CLIENT_KEY, HOST_KEY, _script_action, _script_call, settled
from tests.unit.test_ssh_hosts import HOSTS, KEY, LOCAL, REMOTE, build, inputs_without_secrets, unsecret

PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedKeyFromTheStackConfig000000000000000"
PROVIDER = "pulumi:providers:docker"


def built_swarm(mocks, config, hosts=HOSTS, orchestrator="swarm"):
    nodes = build(config, orchestrator=orchestrator, hosts=hosts)
    if orchestrator != "swarm":
        return nodes, None
    return nodes, Swarm("sw", {"nodes": nodes.nodes})


def done(nodes, swarm):
    resources = [*nodes.prepared.values(), *nodes.gateways.values(), *([swarm.provider] if swarm else [])]
    return pulumi.Output.all(*(swarm.node_ids.values() if swarm else []), settled(*resources))


@pulumi.runtime.test
def test_every_ssh_connection_pins_the_host_key_recorded_at_first_contact(mocks, config):
    nodes, swarm = built_swarm(mocks, config)

    def check(_):
        remote = mocks.of(REMOTE)
        assert {"test-prepare-m1", "test-engine-m1", "sw-init", "sw-join-w1", "sw-member-w2"} <= remote.keys()
        for name, inputs in remote.items():
            assert unsecret(inputs["connection"])[0]["hostKey"] == HOST_KEY, name
        scans = {k: v for k, v in mocks.of(LOCAL).items() if "-hostkey-" in k}
        assert sorted(scans) == ["test-hostkey-m1", "test-hostkey-w1", "test-hostkey-w2"]
        assert _script_call(scans["test-hostkey-m1"]["create"]) == ("hostkey", ["m1", "192.0.2.11", "2222"])
        # Scanned again only for another address or port (or a replaced machine).
        assert scans["test-hostkey-m1"]["triggers"] == ["192.0.2.11", 2222]
    return done(nodes, swarm).apply(check)


@pulumi.runtime.test
def test_a_host_key_from_the_config_is_pinned_and_never_scanned(mocks, config):
    hosts = [{**HOSTS[1], "hostKey": PINNED + " root@m1"}, HOSTS[0]]
    nodes, swarm = built_swarm(mocks, config, hosts=hosts)

    def check(_):
        assert sorted(k for k in mocks.of(LOCAL) if "-hostkey-" in k) == ["test-hostkey-w1"]
        remote = mocks.of(REMOTE)
        assert unsecret(remote["test-prepare-m1"]["connection"])[0]["hostKey"] == PINNED
        assert unsecret(remote["sw-init"]["connection"])[0]["hostKey"] == PINNED
        assert unsecret(remote["test-prepare-w1"]["connection"])[0]["hostKey"] == HOST_KEY
    return done(nodes, swarm).apply(check)


@pytest.mark.parametrize("host_key", ["ssh-dss AAAAB3NzaC1kc3MAAACBAP", "AAAAC3NzaC1lZDI1NTE5", "ssh-ed25519 not-base64!"])
def test_a_malformed_host_key_is_refused(config, host_key):
    with pytest.raises(ConfigError, match=r"phoenix:hosts\[0\].hostKey = .* is invalid: the host's public key"):
        config(substrate="ssh", sshPrivateKey="(secret)", hosts=json.dumps([{**HOSTS[1], "hostKey": host_key}]))


@pulumi.runtime.test
def test_the_docker_provider_reaches_the_manager_over_mutual_tls_only(mocks, config):
    nodes, swarm = built_swarm(mocks, config)

    def check(_):
        provider = mocks.of(PROVIDER)["sw-manager"]
        assert provider["host"] == f"tcp://192.0.2.11:{ENGINE_PORT}"
        assert "sshOpts" not in provider
        assert unsecret(provider["caMaterial"])[0].startswith("-----BEGIN CERTIFICATE-----\nengine-ca")
        assert unsecret(provider["certMaterial"])[0].startswith("-----BEGIN CERTIFICATE-----\nengine-client")
        assert unsecret(provider["keyMaterial"]) == (ENGINE_CLIENT_KEY, True)
        for r in mocks.resources:  # no private key of the engine CA, client or server in a plain input
            plain = json.dumps(inputs_without_secrets(r.inputs))
            assert not any(k in plain for k in ("ca-key-secret", "client-key-secret", "server-key-secret")), r.name
    return done(nodes, swarm).apply(check)


@pulumi.runtime.test
def test_the_gateway_runs_on_managers_with_a_certificate_for_their_address(mocks, config):
    nodes, swarm = built_swarm(mocks, config)

    def check(_):
        gateways = {k: v for k, v in mocks.of(REMOTE).items() if k.startswith("test-engine-")}
        assert sorted(gateways) == ["test-engine-m1"]
        gateway = gateways["test-engine-m1"]
        assert _script_action(gateway["create"]) == ("install", [str(ENGINE_PORT)])
        assert _script_action(gateway["delete"])[0] == "remove"
        bundle, secret = unsecret(gateway["stdin"])
        assert secret and bundle.count("-----BEGIN CERTIFICATE-----") == 2
        assert "engine-ca\n" in bundle and "engine-server-192.0.2.11" in bundle
        assert "engine-server-key-secret-192.0.2.11" in bundle
        certs = {k: v for k, v in mocks.of(LOCAL).items() if "-engine-" in k}
        assert sorted(certs) == ["test-engine-ca", "test-engine-m1-cert"]
        assert _script_call(certs["test-engine-m1-cert"]["create"]) == ("engine-certs", ["server", "192.0.2.11"])
        assert "engine-ca-key-secret" in unsecret(certs["test-engine-m1-cert"]["stdin"])[0]
        assert unsecret(certs["test-engine-m1-cert"]["stdin"])[1]
    return done(nodes, swarm).apply(check)


@pulumi.runtime.test
def test_k3s_hosts_get_no_engine_gateway(mocks, config):
    nodes, _ = built_swarm(mocks, config, orchestrator="k3s")
    assert nodes.gateways == {} and all(n.docker_host is None for n in nodes.nodes)

    def check(_):
        assert not [k for k in mocks.of(LOCAL) if "-engine-" in k]
    return done(nodes, None).apply(check)


@pytest.fixture
def keyscan(tmp_path):
    """Runs hostkey.sh with a fake ssh-keyscan (printing $KEYS) and a sleep that does not wait."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh-keyscan").write_text('#!/bin/sh\necho "$*" >> "$LOG"\nprintf "%b" "$KEYS"\n')
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)

    def run(keys):
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "KEYS": keys, "LOG": str(tmp_path / "log")}
        return subprocess.run(["sh", "-c", HOSTKEY_SCRIPT, "hostkey", "node-a", "192.0.2.5", "2222"], env=env,
                              capture_output=True, text=True, timeout=20)
    return run


def test_hostkey_prints_the_ed25519_key_of_the_host(keyscan, tmp_path):
    result = keyscan("[192.0.2.5]:2222 ssh-rsa AAAAB3rsa\n[192.0.2.5]:2222 ssh-ed25519 AAAAC3ed\n")
    assert result.returncode == 0 and result.stdout == "ssh-ed25519 AAAAC3ed\n"
    assert (tmp_path / "log").read_text() == "-T 5 -p 2222 192.0.2.5\n"


def test_hostkey_fails_naming_the_host_when_no_key_answers(keyscan, tmp_path):
    result = keyscan("")
    assert result.returncode == 1
    assert result.stderr.strip() == "hostkey: node-a (192.0.2.5:2222): no SSH host key answered in 30 s"
    assert len((tmp_path / "log").read_text().splitlines()) == 6


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command (Debian: openssl)")
def test_engine_certificates_chain_to_the_stack_ca_with_the_address(tmp_path):
    def certs(*args, stdin=None):
        return json.loads(subprocess.run(["python3", "-c", CERTS_SCRIPT, "engine-certs", *args], input=stdin,
                                         capture_output=True, text=True, check=True).stdout)
    ca = certs("ca")
    server = certs("server", "192.0.2.11", stdin=json.dumps({"ca": ca["ca"], "caKey": ca["caKey"]}))
    for name, text in {"ca.pem": ca["ca"], "client.pem": ca["cert"], "server.pem": server["cert"]}.items():
        (tmp_path / name).write_text(text)
    verify = subprocess.run(["openssl", "verify", "-CAfile", "ca.pem", "client.pem", "server.pem"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    text = subprocess.run(["openssl", "x509", "-in", "server.pem", "-noout", "-text"], cwd=tmp_path,
                          capture_output=True, text=True).stdout
    assert "IP Address:192.0.2.11" in text and "TLS Web Server Authentication" in text
    client = subprocess.run(["openssl", "x509", "-in", "client.pem", "-noout", "-text"], cwd=tmp_path,
                            capture_output=True, text=True).stdout
    assert "TLS Web Client Authentication" in client
    assert ca["key"].startswith("-----BEGIN PRIVATE KEY-----") and server["key"] != ca["key"]
    assert list(Path(os.environ.get("TMPDIR", "/tmp")).glob("phoenix-certs-*")) == []  # nothing left on disk


@pytest.fixture
def gateway(tmp_path):
    """The gateway serving on a free port in front of a fake engine that answers each line it reads."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (Debian: openssl)")

    def certs(*args, stdin=None):
        return json.loads(subprocess.run(["python3", "-c", CERTS_SCRIPT, "engine-certs", *args], input=stdin,
                                         capture_output=True, text=True, check=True).stdout)
    ca = certs("ca")
    server = certs("server", "127.0.0.1", stdin=json.dumps({"ca": ca["ca"], "caKey": ca["caKey"]}))
    for name, text in {"ca.pem": ca["ca"], "cert.pem": server["cert"], "key.pem": server["key"],
                       "client.pem": ca["cert"], "client.key": ca["key"]}.items():
        (tmp_path / name).write_text(text)
    engine_path = str(tmp_path / "engine.sock")
    engine = socket.socket(socket.AF_UNIX)
    engine.bind(engine_path)
    engine.listen(64)

    def answer(conn):
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                conn.sendall(b"engine:" + line)
    threading.Thread(target=lambda: [threading.Thread(target=answer, args=(engine.accept()[0],), daemon=True).start()
                                     for _ in iter(int, 1)], daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = subprocess.Popen(["python3", "-c", "import sys; exec(sys.argv[1])", GATEWAY_SCRIPT, "serve", str(tmp_path),
                               str(port)], env={**os.environ, "PHOENIX_ENGINE_SOCKET": engine_path})
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield tmp_path, port
    served.kill()
    served.wait()
    engine.close()


def tls_client(directory, port, with_certificate=True):
    context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    if with_certificate:
        context.load_cert_chain(str(directory / "client.pem"), str(directory / "client.key"))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")


def test_the_gateway_relays_many_clients_at_once_to_the_engine(gateway):
    directory, port = gateway
    answers = []

    def talk(i):
        with tls_client(directory, port) as tls, tls.makefile("rb") as reply:
            for j in range(20):
                tls.sendall(f"request {i}.{j}\n".encode())
                answers.append(reply.readline())
    threads = [threading.Thread(target=talk, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(answers) == sorted(f"engine:request {i}.{j}\n".encode() for i in range(16) for j in range(20))


def test_the_gateway_refuses_a_client_without_a_certificate_of_the_stack(gateway):
    directory, port = gateway
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with tls_client(directory, port, with_certificate=False) as tls:
            tls.sendall(b"request\n")
            assert tls.recv(100) == b""  # TLS 1.3 reports the refused certificate on the first read
            raise ConnectionError("closed without an answer")


@pulumi.runtime.test
def test_the_engine_endpoint_is_no_secret_though_the_outputs_it_waits_for_are(mocks, config):
    # Every output of a command holding the SSH key is secret, init's included: the endpoint is not.
    nodes = build(config).nodes
    leader = dataclasses.replace(nodes[0], docker_host=pulumi.Output.secret(f"tcp://192.0.2.11:{ENGINE_PORT}"))
    swarm = Swarm("sw", {"nodes": [leader, *nodes[1:]]})

    async def check():
        assert await swarm.docker_host.future() == f"tcp://192.0.2.11:{ENGINE_PORT}"
        assert not await swarm.docker_host.is_secret()
    return settled(swarm.provider).apply(lambda _: check())

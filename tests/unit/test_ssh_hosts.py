"""SSH hosts: nodes from phoenix:hosts, prepare-first fail-fast wiring, Swarm over remote commands,
images streamed over SSH, the private key kept secret; prepare.sh's failure report."""
import json
import shlex
import subprocess
from pathlib import Path

import pulumi
import pytest

from components.apps.app_image import AppImage
from components.nodes.hosts import host_nodes
from components.nodes.node import Ssh
from components.nodes.ssh_hosts import PREPARE_SCRIPT, SshHosts
from components import orchestrators
from components.orchestrators.swarm import LOADER, Swarm
from tests.unit.conftest import APP_IMAGE_ID, HOST_KEY, WORKER_TOKEN, _script_action, fake_toolchain, settled

REMOTE = "command:remote:Command"
LOCAL = "command:local:Command"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n-----END OPENSSH PRIVATE KEY-----"
HOSTS = [
    {"name": "w1", "address": "192.0.2.21", "role": "worker", "user": "deploy"},
    {"name": "m1", "address": "192.0.2.11", "role": "manager", "port": 2222},
    {"name": "w2", "address": "192.0.2.22", "role": "worker"},
]
PREPARE = Path(__file__).resolve().parents[2] / "components" / "nodes" / "scripts" / "prepare.sh"


def build(config, orchestrator="swarm", hosts=HOSTS):
    cfg = config(substrate="ssh", orchestrator=orchestrator, hosts=json.dumps(hosts), sshPrivateKey="(secret)",
                 sshUser="admin")
    return host_nodes(cfg, orchestrators.get(orchestrator), None, private_key=pulumi.Output.secret(KEY))


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how a secret input reaches the mocks: {SIG: "1b47...", "value": v}


def unsecret(value):
    """(plain value, whether it was a secret) of one mock input."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return value["value"], True
    return value, False


def action(inputs) -> tuple[str, list[str]]:
    return _script_action(inputs["create"])


def test_prepare_script_is_the_one_copy():
    assert PREPARE_SCRIPT == PREPARE.read_text()


@pulumi.runtime.test
def test_hosts_become_nodes_managers_first_with_ssh_connections(mocks, config):
    hosts = build(config)
    assert isinstance(hosts, SshHosts)
    assert hosts.registry is None
    assert [(n.name, n.role) for n in hosts.nodes] == [("m1", "manager"), ("w1", "worker"), ("w2", "worker")]
    m1, w1, w2 = hosts.nodes
    assert isinstance(m1.connection, Ssh)
    assert (m1.connection.host, m1.connection.user, m1.connection.port) == ("192.0.2.11", "admin", 2222)
    assert (w1.connection.user, w1.connection.port) == ("deploy", 22)
    assert m1.address == m1.public_address == "192.0.2.11"

    # Only the manager's engine is reachable, and only over mutual TLS (the gateway's port).
    assert w1.docker_host is None and w1.docker_tls is None and m1.docker_tls is not None

    def check(docker_host):
        assert docker_host == "tcp://192.0.2.11:2376"
    return pulumi.Output.from_input(m1.docker_host).apply(check)


@pulumi.runtime.test
def test_a_prepare_command_on_every_host_over_its_own_connection(mocks, config):
    hosts = build(config)

    def check(_):
        prepares = {k: v for k, v in mocks.of(REMOTE).items() if "-prepare-" in k}
        assert sorted(prepares) == ["test-prepare-m1", "test-prepare-w1", "test-prepare-w2"]
        for name, inputs in prepares.items():
            host = name.rsplit("-", 1)[1]
            assert action(inputs) == (host, ["docker"]), "swarm needs the Docker Engine on every host"
            assert "docker.io" in inputs["create"] and "get.docker.com" in inputs["create"]
        conn, secret = unsecret(prepares["test-prepare-w1"]["connection"])
        assert secret
        assert (conn["host"], conn["user"], conn["port"]) == ("192.0.2.21", "deploy", 22)
        # Fail fast on an unreachable host: 3 dials of 10 s.
        assert conn["dialErrorLimit"] == 3 and conn["perDialTimeout"] == 10
        assert conn["privateKey"] == KEY
        assert "secret-key-material" not in json.dumps(inputs_without_secrets(prepares["test-prepare-w1"]))
    return settled(*hosts.prepared.values()).apply(check)


@pulumi.runtime.test
def test_hosts_are_prepared_with_the_orchestrators_prerequisites(mocks, config):
    hosts = build(config, orchestrator="k3s")

    def check(_):
        prepares = {k: v for k, v in mocks.of(REMOTE).items() if "-prepare-" in k}
        # k3s needs nothing installed beforehand: prepare gets the host name alone.
        assert sorted((action(v)[0], action(v)[1]) for v in prepares.values()) == [("m1", []), ("w1", []), ("w2", [])]
    return settled(*hosts.prepared.values()).apply(check)


def test_every_node_waits_for_every_host_to_be_prepared(mocks, config):
    # One unreachable host fails `pulumi up` before any host inits or joins: nothing half-joined.
    hosts = build(config)
    prepared = list(hosts.prepared.values())
    assert len(prepared) == 3 and list(hosts.gateways) == ["m1"]
    for node in hosts.nodes:
        assert list(node.ready) == [*prepared, hosts.gateways["m1"]]


@pulumi.runtime.test
def test_swarm_bootstraps_over_remote_commands(mocks, config):
    hosts = build(config)
    swarm = Swarm("sw", {"nodes": hosts.nodes})

    def check(_):
        remote = mocks.of(REMOTE)
        assert not any(action(v)[0] in ("init", "join") for v in mocks.of(LOCAL).values())
        init = remote["sw-init"]
        assert action(init) == ("init", ["192.0.2.11"])
        assert unsecret(init["connection"])[0]["host"] == "192.0.2.11"
        join = remote["sw-join-w2"]
        assert action(join) == ("join", ["192.0.2.22", "192.0.2.11"])
        assert unsecret(join["connection"])[0]["host"] == "192.0.2.22"
        assert unsecret(join["stdin"]) == (WORKER_TOKEN + "\n", True)
        assert WORKER_TOKEN not in join["create"]
        member = remote["sw-member-w1"]
        assert unsecret(member["connection"])[0]["host"] == "192.0.2.11"
        assert action(member)[0] == "label" and _script_action(member["delete"])[0] == "remove"
    return pulumi.Output.all(*swarm.node_ids.values(), settled(swarm.provider)).apply(check)


@pulumi.runtime.test
def test_app_image_is_streamed_to_each_host_without_putting_the_key_on_a_command_line(mocks, config):
    hosts = build(config)
    image = AppImage("img", {"base_image": "python:3.12-slim", "registry": None, "nodes": hosts.nodes,
                             "loader": LOADER})

    def check(ref):
        assert ref == APP_IMAGE_ID
        loads = {k: v for k, v in mocks.of(LOCAL).items() if "-load-" in k}
        assert sorted(loads) == ["img-load-m1", "img-load-w1", "img-load-w2"]
        line = loads["img-load-m1"]["create"]
        producer, consumer = line.split(" | ", 1)
        assert "docker save phoenix/sample-app:" in producer
        argv = shlex.split(consumer)
        assert argv[:5] == ["ssh", "-i", "$ssh_dir/key", "-o", "UserKnownHostsFile=$ssh_dir/known_hosts"]
        assert "admin@192.0.2.11" in argv and argv[argv.index("-p") + 1] == "2222"
        assert _script_action(argv[-1]) == ("load", [])
        env, env_secret = unsecret(loads["img-load-m1"]["environment"])
        assert env_secret or unsecret(env["PHOENIX_SSH_KEY"])[1]
        assert unsecret(env["PHOENIX_SSH_KEY"])[0] == KEY
        assert unsecret(env["PHOENIX_SSH_HOST_KEY"])[0] == HOST_KEY  # the key recorded at first contact
        for inputs in loads.values():
            assert "secret-key-material" not in inputs["create"]
    return image.ref.apply(check)


def inputs_without_secrets(value):
    """A mock input with every secret value replaced by a placeholder."""
    plain, secret = unsecret(value)
    if secret:
        return "[secret]"
    if isinstance(plain, dict):
        return {k: inputs_without_secrets(v) for k, v in plain.items()}
    if isinstance(plain, list):
        return [inputs_without_secrets(v) for v in plain]
    return plain


@pulumi.runtime.test
def test_the_private_key_reaches_resources_only_as_a_secret(mocks, config):
    hosts = build(config)
    swarm = Swarm("sw", {"nodes": hosts.nodes})
    image = AppImage("img", {"base_image": "b", "registry": None, "nodes": hosts.nodes, "loader": LOADER})

    async def check():
        await image.ref.future()
        await settled(swarm.provider).future()
        for node in hosts.nodes:
            assert await pulumi.Output.from_input(node.connection.private_key).is_secret()
        used = [r.name for r in mocks.resources if "secret-key-material" in json.dumps(r.inputs)]
        assert len(used) >= 3 + 3  # prepare commands and image loads at least
        for r in mocks.resources:
            assert "secret-key-material" not in json.dumps(inputs_without_secrets(r.inputs)), r.name
    return pulumi.Output.from_input(check())


@pulumi.runtime.test
def test_a_plain_private_key_is_made_secret(mocks, config):
    cfg = config(substrate="ssh", hosts=json.dumps(HOSTS), sshPrivateKey="(secret)")
    hosts = host_nodes(cfg, orchestrators.get("swarm"), None, private_key=KEY)

    async def check():
        assert await pulumi.Output.from_input(hosts.nodes[0].connection.private_key).is_secret()
    return pulumi.Output.from_input(check())


def test_hosts_need_a_manager(mocks):
    from components.config import SshHost
    with pytest.raises(ValueError, match="manager"):
        SshHosts("x", {"hosts": [SshHost("w", "192.0.2.1", "worker")], "orchestrator": orchestrators.get("swarm"),
                        "private_key": KEY})


def test_ssh_argv_runs_the_command_with_the_key_file():
    argv = Ssh("192.0.2.5", "root", 2200, KEY, key_file="/k/id", known_hosts="/k/known").argv(["docker", "load", "-q"])
    assert argv[:3] == ["ssh", "-i", "/k/id"]
    assert argv[argv.index("-p") + 1] == "2200"
    assert "UserKnownHostsFile=/k/known" in argv and "BatchMode=yes" in argv
    assert argv[-2:] == ["root@192.0.2.5", "docker load -q"]


def test_ssh_argv_refuses_a_host_known_only_at_deploy_time(mocks):
    with pytest.raises(TypeError, match="Output"):
        Ssh(pulumi.Output.from_input("192.0.2.5"), "root", 22, KEY).argv(["true"])


def test_pipe_line_writes_key_and_host_key_from_the_environment_and_removes_them():
    line = Ssh("h", "root", 22, KEY, host_key=HOST_KEY).pipe_line("192.0.2.5", "cat img.tar", ["docker", "load", "-q"])
    assert line.startswith('umask 077 && ssh_dir=$(mktemp -d) && trap \'rm -rf "$ssh_dir"\' EXIT && '
                           'printf \'%s\\n\' "$PHOENIX_SSH_KEY" > "$ssh_dir/key" && '
                           'printf \'%s %s\\n\' 192.0.2.5 "$PHOENIX_SSH_HOST_KEY" > "$ssh_dir/known_hosts" && ')
    other_port = Ssh("h", "root", 2222, KEY, host_key=HOST_KEY).pipe_line("192.0.2.5", "true", ["true"])
    assert "printf '%s %s\\n' '[192.0.2.5]:2222' \"$PHOENIX_SSH_HOST_KEY\"" in other_port
    assert 'cat img.tar | ssh -i "$ssh_dir/key" -o UserKnownHostsFile="$ssh_dir/known_hosts" ' in line
    assert line.endswith("root@192.0.2.5 'docker load -q'")


def test_pipe_accepts_only_the_pinned_host_key_and_only_the_stack_key():
    argv = shlex.split(Ssh("h", "root", 22, KEY, host_key=HOST_KEY).pipe_line("192.0.2.5", "true", ["true"]).split(" | ")[1])
    options = {argv[i + 1] for i, a in enumerate(argv) if a == "-o"}
    assert {"StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes", "IdentityAgent=none"} <= options
    assert argv[argv.index("-F") + 1] == "none"  # no ~/.ssh/config of the operator


def test_pipe_refuses_a_host_without_a_known_key(mocks):
    with pytest.raises(ValueError, match="host keys are always verified"):
        Ssh("192.0.2.5", "root", 22, KEY).pipe("p", "true", ["true"])


def test_no_ssh_in_the_repository_skips_host_key_checking():
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for d in ("components", "scripts", "tests", "images", "docs", "stacks")
                 for p in (root / d).rglob("*") if p.is_file() and p.suffix in (".py", ".sh", ".md", ".yaml", "")
                 and p != Path(__file__) and "StrictHostKeyChecking=no" in p.read_text(errors="ignore")]
    assert offenders == []


def run_prepare(*args, env=None):
    return subprocess.run(["sh", "-c", PREPARE_SCRIPT, "prepare", *args], capture_output=True, text=True,
                          timeout=30, env=env)


def test_prepare_reports_the_host_and_the_reason_on_failure():
    result = run_prepare("edge-7", "podman")
    assert result.returncode == 1
    assert result.stderr.strip() == "prepare: edge-7: unknown host prerequisite 'podman' (docker, kubeadm)"


def test_prepare_installs_nothing_without_prerequisites():
    result = run_prepare("edge-7")
    assert result.returncode == 0 and result.stdout.strip() == "edge-7: ready (nothing to install)"


def test_prepare_refuses_to_install_without_root_rights(tmp_path):
    # No dockerd, not root (a fake `id`), no sudo: the host and the reason, at once.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text('#!/bin/sh\n[ "$1" = -u ] && echo 1000 || echo deploy\n')
    (bin_dir / "id").chmod(0o755)
    for tool in ("sh", "echo", "sleep", "cat"):
        target = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if target.startswith("/"):
            (bin_dir / tool).symlink_to(target)
    result = run_prepare("edge-7", "docker", env={"PATH": str(bin_dir)})
    assert result.returncode == 1
    assert result.stderr.strip() == ("prepare: edge-7: Docker is missing and user deploy cannot sudo "
                                     "without a password to install it")


def test_prepare_needs_containerds_configuration_for_kubeadm_before_installing_anything():
    result = run_prepare("edge-7", "kubeadm")
    assert result.returncode == 1
    assert result.stderr.strip() == "prepare: edge-7: the kubeadm prerequisite needs containerd's configuration on stdin"


@pulumi.runtime.test
def test_kubeadm_hosts_are_prepared_with_the_node_images_containerd_configuration(mocks, config, tmp_path):
    cfg = config(substrate="ssh", orchestrator="kubeadm", hosts=json.dumps(HOSTS), sshPrivateKey="(secret)",
                 kubeadmToolchainDir=fake_toolchain(tmp_path))
    hosts = host_nodes(cfg, orchestrators.get("kubeadm"), None, private_key=pulumi.Output.secret(KEY))

    def check(_):
        prepares = {k: v for k, v in mocks.of(REMOTE).items() if "-prepare-" in k}
        assert len(prepares) == 3
        for inputs in prepares.values():
            assert action(inputs)[1] == ["kubeadm"]
            assert inputs["stdin"] == (Path(__file__).resolve().parents[2] / "images" / "k8s-node" / "containerd.toml").read_text()
        assert all(n.docker_host is None for n in hosts.nodes), "no Docker Engine on kubeadm hosts"
    return settled(*hosts.prepared.values()).apply(check)


@pytest.fixture
def key_config():
    pulumi.runtime.set_all_config({"phoenix:sshPrivateKey": KEY}, ["phoenix:sshPrivateKey"])
    yield
    pulumi.runtime.set_all_config({})


def test_the_program_on_ssh_hosts_streams_the_image_and_bootstraps_over_ssh(mocks, config, key_config):
    from components.cluster import Cluster
    cfg = config(substrate="ssh", hosts=json.dumps(HOSTS), sshPrivateKey="(secret)", publishedPort=8088)
    urls = []

    @pulumi.runtime.test
    def deploy():  # returns once every resource is registered and every Output settled
        cluster = Cluster("phoenix", {"config": cfg})
        return cluster.app_url.apply(urls.append)
    deploy()

    assert urls == ["http://192.0.2.11:8088/"]
    loads = sorted(k for k in mocks.of(LOCAL) if "-load-" in k)
    assert loads == ["phoenix-image-load-m1", "phoenix-image-load-w1", "phoenix-image-load-w2"]
    remote = mocks.of(REMOTE)
    assert action(remote["phoenix-swarm-init"]) == ("init", ["192.0.2.11"])
    assert {k for k in remote if "-prepare-" in k} == {"test-prepare-m1", "test-prepare-w1", "test-prepare-w2"}
    assert not any(r.typ.startswith("docker:index/container") for r in mocks.resources)
    for r in mocks.resources:
        assert "secret-key-material" not in json.dumps(inputs_without_secrets(r.inputs)), r.name

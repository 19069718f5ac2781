"""kubeadm wiring under mocks: container nodes (image, command, registry config, ports), init on the
first control-plane node, joins (token and certificate key on stdin only, control-plane nodes one at
a time), membership records, the kubeconfig (secret, pointed at the users' address)."""
import shlex

import pulumi
import yaml

from components.nodes.docker_nodes import DockerNodes
from components.orchestrators import kubeadm
from components.orchestrators.kubeadm import Kubeadm
from components.orchestrators.kubernetes import secret_once
from tests.unit.conftest import (KUBEADM_CA_HASH, KUBEADM_CERT_KEY, KUBEADM_TOKEN, _script_action, exec_target,
                                 fake_toolchain, secret_value)
from tests.unit.test_k3s import graph  # noqa: F401 (fixture: the mock monitor with dependencies)

LOCAL = "command:local:Command"
CONTAINER = "docker:index/container:Container"


def cluster(config, **raw):
    cfg = config(orchestrator="kubeadm", **raw)
    nodes = DockerNodes("test", {"config": cfg.nodes, "runtime": kubeadm.ORCHESTRATOR.container_runtime(cfg),
                                 "bind_address": cfg.app.bind_address, "labels": cfg.labels})
    secrets = secret_once("k-secrets", kubeadm.SECRETS_COMMAND)
    made = Kubeadm("k", {"nodes": nodes.nodes, "secrets": secrets, "entry_port": kubeadm.INGRESS_PORT,
                         "api_url": f"https://127.0.0.1:{cfg.kubeadm.api_port}"})
    return nodes, made


def on(inputs) -> tuple[str, str, list[str]]:
    """(container, action, args) of a command run through `docker exec -i CONTAINER sh -c SCRIPT kubeadm ...`."""
    action, args = _script_action(inputs["create"])
    return exec_target(inputs["create"]), action, args


def settle(made: Kubeadm) -> pulumi.Output:
    return pulumi.Output.all(*[r.urn for r in made.ready], made.kubeconfig)


@pulumi.runtime.test
def test_containers_run_the_node_image_with_containerd_on_a_volume_and_the_registry_over_http(graph, config):
    nodes, made = cluster(config, workers=2, publishedPort=9090, apiPort=6450)

    def check(_):
        containers = {k: v for k, v in graph.mocks.of(CONTAINER).items() if k != "test-registry"}
        images = {i["name"] for i in graph.mocks.of("docker:index/remoteImage:RemoteImage").values()}
        assert kubeadm.NODE_IMAGE in images
        for name, c in containers.items():
            assert "command" not in c, "the image's entrypoint, nothing per node: kubeadm configures the rest"
            assert {"volumeName": f"phoenix-{name}", "containerPath": "/var/lib/containerd"} in c["volumes"]
            hosts = {u["file"]: u["content"] for u in c["uploads"]}["/etc/containerd/certs.d/172.28.0.2:5000/hosts.toml"]
            assert 'server = "http://172.28.0.2:5000"' in hosts
        assert sorted(containers["test-m0"]["ports"], key=lambda p: p["internal"]) == [
            {"internal": 80, "external": 9090, "ip": "127.0.0.1"},
            {"internal": 6443, "external": 6450, "ip": "127.0.0.1"}]
        assert "ports" not in containers["test-w1"]
    return settle(made).apply(check)


@pulumi.runtime.test
def test_the_first_node_inits_and_the_others_join_it_with_secrets_on_stdin_only(graph, config):
    nodes, made = cluster(config, managers=3, workers=1)

    def check(_):
        cmds = graph.mocks.of(LOCAL)
        assert on(cmds["k-init"]) == ("test-m0", "init", ["test-m0", "172.28.0.10", "127.0.0.1"])
        assert secret_value(cmds["k-init"]["stdin"]) == f"{KUBEADM_TOKEN}\n{KUBEADM_CERT_KEY}\n"
        for name, role in (("test-m1", "server"), ("test-m2", "server"), ("test-w1", "worker")):
            join = cmds[f"k-join-{name}"]
            assert on(join) == (name, "join", [name, nodes.nodes[[n.name for n in nodes.nodes].index(name)].address,
                                               "172.28.0.10", KUBEADM_CA_HASH, role])
            stdin = secret_value(join["stdin"])
            # Only control-plane nodes get the key that decrypts the cluster's certificates.
            assert stdin == (f"{KUBEADM_TOKEN}\n{KUBEADM_CERT_KEY}\n" if role == "server" else f"{KUBEADM_TOKEN}\n")
        for name, inputs in cmds.items():
            if name != "k-secrets":
                assert KUBEADM_TOKEN not in inputs["create"] and KUBEADM_CERT_KEY not in inputs["create"], name
    return settle(made).apply(check)


@pulumi.runtime.test
def test_control_plane_nodes_join_one_at_a_time_workers_whenever(graph, config):
    _, made = cluster(config, managers=3, workers=2)

    def check(_):
        cmds = graph.mocks.of(LOCAL)
        for previous, joining in (("test-m0", "test-m1"), ("test-m1", "test-m2")):
            # etcd takes one new member at a time; the certificates are uploaded again just before.
            assert f"k-certs-{joining}" in graph.deps(f"k-join-{joining}")
            assert f"k-member-{previous}" in graph.deps(f"k-certs-{joining}")
            assert on(cmds[f"k-certs-{joining}"]) == ("test-m0", "upload-certs", [])
            assert secret_value(cmds[f"k-certs-{joining}"]["stdin"]) == KUBEADM_CERT_KEY + "\n"
        assert "k-certs-test-w1" not in cmds, "workers need no certificates"
        assert not any(d.startswith("k-member-") for d in graph.deps("k-join-test-w1"))
        assert "k-init" in graph.deps("k-join-test-w1") and "test-w1" in graph.deps("k-join-test-w1")
    return settle(made).apply(check)


@pulumi.runtime.test
def test_members_wait_on_the_first_node_and_removal_drains_there(graph, config):
    _, made = cluster(config, workers=2)

    def check(_):
        cmds = graph.mocks.of(LOCAL)
        assert on(cmds["k-member-test-m0"]) == ("test-m0", "wait-node", ["test-m0"])
        assert "delete" not in cmds["k-member-test-m0"], "the first node is never removed by a record"
        member = cmds["k-member-test-w2"]
        assert on(member) == ("test-m0", "wait-node", ["test-w2"])
        assert exec_target(member["delete"].split("running) ", 1)[1]) == "test-m0-id", "on the very container of the first node"
        assert _script_action(member["delete"]) == ("remove", ["test-w2"])
        assert "triggers" not in member, "a replaced record would remove the node again"
        assert {"k-join-test-w2", "k-addons", "test-w2"} <= graph.deps("k-member-test-w2")
    return settle(made).apply(check)


@pulumi.runtime.test
def test_addons_are_applied_on_the_first_node_again_when_they_change(graph, config):
    _, made = cluster(config)

    def check(_):
        addons = graph.mocks.of(LOCAL)["k-addons"]
        # Traefik serves port 80 of every node and reports 127.0.0.1 (where users reach it) to Ingresses.
        assert on(addons) == ("test-m0", "addons", ["80", "127.0.0.1"])
        assert addons["stdin"] == kubeadm.ADDONS
        assert any(t == kubeadm.hashlib.sha256(kubeadm.ADDONS.encode()).hexdigest()[:16] for t in addons["triggers"])
    return settle(made).apply(check)


@pulumi.runtime.test
def test_kubeconfig_is_secret_and_points_at_the_published_api(graph, config):
    _, made = cluster(config, apiPort=6450)

    async def check(kubeconfig):
        doc = yaml.safe_load(kubeconfig)
        assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6450"
        assert doc["current-context"] == "phoenix-test"
        assert await made.kubeconfig.is_secret()
        assert list(graph.requests["k-kubeconfig"].additionalSecretOutputs) == ["stdout"]
        assert graph.mocks.of(LOCAL)["k-kubeconfig"]["logging"] == "stderr", "never streamed to the log"
    return made.kubeconfig.apply(check)


@pulumi.runtime.test
def test_bootstrap_secrets_are_made_once_and_kept_secret(graph):
    secrets = secret_once("s", kubeadm.SECRETS_COMMAND)

    async def check(value):
        token, key = value.splitlines()
        assert (token, key) == (KUBEADM_TOKEN, KUBEADM_CERT_KEY)
        assert await secrets.is_secret()
        inputs = graph.mocks.of(LOCAL)["s"]
        assert "triggers" not in inputs and inputs["logging"] == "stderr"
        assert "create" in graph.requests["s"].ignoreChanges
    return secrets.apply(check)


def test_the_secrets_command_makes_a_kubeadm_token_and_a_certificate_key():
    import re
    import subprocess
    out = subprocess.run(["sh", "-c", kubeadm.SECRETS_COMMAND], capture_output=True, text=True, check=True).stdout
    token, key = out.splitlines()
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token)
    assert re.fullmatch(r"[0-9a-f]{64}", key)


# --- hosts and VMs -----------------------------------------------------------------------------

REMOTE = "command:remote:Command"


def hosts(servers=1, workers=2):
    from components.nodes.node import Node, Ssh
    from tests.unit.conftest import HOST_KEY
    specs = [(f"s{i}", "manager") for i in range(servers)] + [(f"w{i}", "worker") for i in range(workers)]
    return [Node(name=n, role=r, address=f"10.0.0.{i + 10}",
                 connection=Ssh(host=f"203.0.113.{i + 10}", user="root", port=22, private_key="KEY", host_key=HOST_KEY),
                 docker_host=None, public_address=f"203.0.113.{i + 10}") for i, (n, r) in enumerate(specs)]


def piped(create: str) -> tuple[str, list[str]]:
    """(ACTION, ARGS) of the kubeadm.sh call a pipe runs on its host (the ssh command's last word)."""
    return _script_action(shlex.split(create.split(" | ssh ", 1)[1])[-1])


def host_cluster(tmp_path, **kw):
    secrets = secret_once("k-secrets", kubeadm.SECRETS_COMMAND)
    return Kubeadm("k", {"nodes": hosts(**kw), "secrets": secrets, "entry_port": 18093,
                         "api_url": "https://203.0.113.10:6443", "toolchain_dir": fake_toolchain(tmp_path)})


@pulumi.runtime.test
def test_hosts_get_the_toolchain_streamed_over_ssh_before_they_init_or_join(graph, tmp_path):
    made = host_cluster(tmp_path, servers=3)

    def check(_):
        pipes = {k: v for k, v in graph.mocks.of(LOCAL).items() if k.startswith(("k-bin-", "k-image-"))}
        common = {"pause-3.10.1", "kube-proxy", "flannel"}
        control_plane = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
        for node, images in (("s0", common | control_plane), ("s1", common | control_plane), ("w0", common),
                             ("w1", common)):
            mine = {k for k in pipes if k.endswith(tuple(f"-{node}-{x}" for x in [*images, *kubeadm.BINARIES]))}
            assert mine == {f"k-bin-{node}-{b}" for b in kubeadm.BINARIES} | {f"k-image-{node}-{i}" for i in images}
            step = "k-init" if node == "s0" else f"k-join-{node}"
            assert mine <= graph.deps(step), f"{node} inits/joins only once it holds the toolchain"
        kubelet = pipes["k-bin-w0-kubelet"]
        assert kubelet["create"].split(" | ssh ")[0].endswith(f"cat {tmp_path}/bin/kubelet")
        assert piped(kubelet["create"]) == ("install-binary", ["kubelet"])
        assert "203.0.113.13" in kubelet["create"] and "StrictHostKeyChecking=yes" in kubelet["create"]
        # Re-sent when the toolchain's piece changes (the cache's links point at versioned pieces).
        assert kubelet["triggers"] == [str(tmp_path / "pieces" / "v1" / "bin" / "kubelet")]
        assert piped(pipes["k-image-s0-etcd"]["create"]) == ("import", ["etcd"])
    return settle(made).apply(check)


@pulumi.runtime.test
def test_hosts_leave_by_uninstalling_after_the_first_server_removed_them(graph, tmp_path):
    made = host_cluster(tmp_path)

    def check(_):
        cmds = graph.mocks.of(REMOTE)
        for step in ("k-init", "k-join-w0", "k-join-w1"):
            assert _script_action(cmds[step]["delete"]) == ("uninstall", []), step
            assert graph.requests[step].deleteBeforeReplace, step
        # The drain and removal on the first server (the member record) is deleted before the join.
        assert "k-join-w0" in graph.deps("k-member-w0")
        assert _script_action(cmds["k-member-w0"]["delete"]) == ("remove", ["w0"])
        assert _script_action(cmds["k-addons"]["create"]) == ("addons", ["18093", "203.0.113.10"])
    return settle(made).apply(check)


@pulumi.runtime.test
def test_container_nodes_get_no_toolchain_and_no_uninstall(graph, config):
    _, made = cluster(config, workers=1)

    def check(_):
        cmds = graph.mocks.of(LOCAL)
        assert not any(k.startswith(("k-bin-", "k-image-")) for k in cmds)
        assert "delete" not in cmds["k-init"] and "delete" not in cmds["k-join-test-w1"]
    return settle(made).apply(check)


def test_only_control_plane_nodes_get_the_control_plane_images(tmp_path):
    root = fake_toolchain(tmp_path)
    worker = {p.name for p in kubeadm.toolchain_images(root, "worker")}
    assert worker == {"pause-3.10.1.tar", "kube-proxy.tar", "flannel.tar"}
    assert {p.name for p in kubeadm.toolchain_images(root, "manager")} == worker | {
        f"{s}.tar" for s in kubeadm.CONTROL_PLANE_IMAGES}


@pulumi.runtime.test
def test_deploy_on_hosts_points_the_api_at_the_first_server_and_traefik_at_the_published_port(graph, config, tmp_path):
    cfg = config(orchestrator="kubeadm", substrate="ssh", sshPrivateKey="(secret)", publishedPort=18093,
                 kubeadmToolchainDir=fake_toolchain(tmp_path),
                 hosts=[{"name": "s0", "address": "203.0.113.10", "role": "manager"}])
    from components.apps.spec import sample_services
    deployed = kubeadm.ORCHESTRATOR.deploy("d", cfg, hosts(1, 1), sample_services(cfg.app), "img", pulumi.ResourceOptions())

    def check(values):
        api, kubeconfig = values
        assert api == "https://203.0.113.10:6443"
        assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"] == api
        cmds = graph.mocks.of(REMOTE)
        assert _script_action(cmds["d-kubeadm-addons"]["create"]) == ("addons", ["18093", "203.0.113.10"])
        assert "d-kubeadm-bin-w0-kubelet" in graph.mocks.of(LOCAL)
    return pulumi.Output.all(deployed.outputs["kubernetesApi"], deployed.secrets["kubeconfig"]).apply(check)


@pulumi.runtime.test
def test_up_waits_on_the_first_server_until_every_deployment_is_at_its_autoscalers_minimum(graph, config, tmp_path):
    cfg = config(orchestrator="kubeadm", substrate="ssh", sshPrivateKey="(secret)", webReplicas=3, apiReplicas=2,
                 kubeadmToolchainDir=fake_toolchain(tmp_path),
                 hosts=[{"name": "s0", "address": "203.0.113.10", "role": "manager"}])
    from components.apps.spec import sample_services
    deployed = kubeadm.ORCHESTRATOR.deploy("d", cfg, hosts(1, 1), sample_services(cfg.app), "img", pulumi.ResourceOptions())

    def check(_):
        settled = graph.mocks.of(REMOTE)["d-app-settled"]
        assert secret_value(settled["connection"])["host"] == "203.0.113.10", "on the first server"
        assert _script_action(settled["create"]) == ("wait-app", ["phoenix", "300", "api=2", "web=3"])
        assert {"d-app-web", "d-app-web-hpa", "d-app-api", "d-app-api-hpa"} <= graph.deps("d-app-settled"), \
            "after the app's Deployments and autoscalers exist"
    return pulumi.Output.all(*[r.urn for r in deployed.app]).apply(check)

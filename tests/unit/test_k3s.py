"""k3s wiring under mocks: server/agent roles and join flags, ordering, the token (secret, made once,
never on a command line), the kubeconfig (secret, pointed at the users' address), container nodes
(rancher/k3s image, files, ports) and hosts (install script, air-gap, uninstall)."""
import shlex

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockMonitor

from components.nodes.docker_nodes import DockerNodes
from components.nodes.node import Node, Ssh
from components.orchestrators import k3s
from components.orchestrators.k3s import K3s
from components.orchestrators.kubernetes import user_kubeconfig
from tests.unit.conftest import exec_target, K3S_TOKEN, Mocks, _script_action, secret_value, settled
from tests.unit.test_program import exports, run_program  # noqa: F401 (`exports` is a fixture)

LOCAL, REMOTE = "command:local:Command", "command:remote:Command"
CONTAINER = "docker:index/container:Container"


class Recording(MockMonitor):
    """The mock monitor, keeping each registration request: dependencies and options mocks do not see."""

    def __init__(self, mocks):
        super().__init__(mocks)
        self.requests = {}

    def RegisterResource(self, request):  # noqa: N802 (gRPC naming)
        self.requests[request.name] = request
        return super().RegisterResource(request)

    def deps(self, name: str) -> set[str]:
        return {urn.rsplit("::", 1)[1] for urn in self.requests[name].dependencies}


@pytest.fixture
def graph() -> Recording:
    monitor = Recording(Mocks())
    pulumi.runtime.set_mocks(monitor.mocks, project="phoenix", stack="test", preview=False, monitor=monitor)
    return monitor


def action(inputs) -> tuple[str, list[str]]:
    return _script_action(inputs["create"])


def container_nodes(config, **raw):
    cfg = config(orchestrator="k3s", **raw)
    nodes = DockerNodes("test", {"config": cfg.nodes, "runtime": k3s.ORCHESTRATOR.container_runtime(cfg),
                                 "bind_address": cfg.app.bind_address, "labels": cfg.labels})
    return cfg, nodes


def host_nodes(servers=1, agents=2, public=True):
    specs = [(f"s{i}", "manager") for i in range(servers)] + [(f"a{i}", "worker") for i in range(agents)]
    return [Node(name=n, role=r, address=f"10.0.0.{i + 10}",
                 connection=Ssh(host=f"203.0.113.{i + 10}", user="root", port=22, private_key="KEY"),
                 docker_host=f"ssh://root@203.0.113.{i + 10}",
                 public_address=f"203.0.113.{i + 10}" if public else f"10.0.0.{i + 10}")
            for i, (n, r) in enumerate(specs)]


# --- container nodes ----------------------------------------------------------------------------

@pulumi.runtime.test
def test_containers_run_the_k3s_image_as_server_or_agent(graph, config):
    _, nodes = container_nodes(config, managers=1, workers=2)

    def check(_):
        containers = graph.mocks.of(CONTAINER)
        images = {i["name"] for i in graph.mocks.of("docker:index/remoteImage:RemoteImage").values()}
        assert "rancher/k3s:v1.31.4-k3s1" in images
        m0, w1 = containers["test-m0"]["command"], containers["test-w1"]["command"]
        assert m0[0] == "server" and w1[0] == "agent"
        # One server: SQLite, neither --cluster-init nor --server.
        assert "--cluster-init" not in m0 and not any(f.startswith("--server=") for f in m0)
        assert "--server=https://172.28.0.10:6443" in w1
        assert "--tls-san=127.0.0.1" in m0
        for name in ("test-m0", "test-w1", "test-w2"):
            assert f"--token-file={k3s.TOKEN_FILE}" in containers[name]["command"]
            assert f"--node-name={name}" in containers[name]["command"]
            assert {"volumeName": f"phoenix-{name}", "containerPath": "/var/lib/rancher/k3s"} in containers[name]["volumes"]
    return pulumi.Output.all(*[r.urn for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_three_servers_form_embedded_etcd_led_by_the_first(graph, config):
    _, nodes = container_nodes(config, managers=3, workers=1)

    def check(_):
        c = {k: v["command"] for k, v in graph.mocks.of(CONTAINER).items() if k != "test-registry"}
        assert "--cluster-init" in c["test-m0"] and not any(f.startswith("--server=") for f in c["test-m0"])
        for name in ("test-m1", "test-m2"):
            assert c[name][0] == "server"
            assert "--server=https://172.28.0.10:6443" in c[name] and "--cluster-init" not in c[name]
        assert c["test-w1"][0] == "agent" and "--server=https://172.28.0.10:6443" in c["test-w1"]
    return pulumi.Output.all(*[r.urn for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_container_servers_join_one_at_a_time_after_the_previous_is_ready(graph, config):
    _, nodes = container_nodes(config, managers=3, workers=1)

    def check(_):
        gates = graph.mocks.of(LOCAL)
        for previous, joining in (("test-m0", "test-m1"), ("test-m1", "test-m2")):
            gate = f"test-k3s-joined-{previous}"
            # The joining server's container is created only once the previous server is a Ready node.
            assert gate in graph.deps(joining), f"{joining} starts before {previous} is Ready"
            assert action(gates[gate]) == ("wait-node", [previous])
            assert exec_target(gates[gate]["create"]) == "test-m0", "checked on the first server"
            assert graph.deps(gate) >= {"test-m0", previous}
        assert "test-k3s-joined-test-m1" not in graph.deps("test-m1")
        assert not any(d.startswith("test-k3s-joined-") for d in graph.deps("test-w1")), "agents need no turn"
        assert not any(d.startswith("test-k3s-joined-") for d in graph.deps("test-m0"))
    return pulumi.Output.all(*[r.urn for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_token_reaches_containers_as_a_secret_file_never_the_command_or_env(graph, config):
    _, nodes = container_nodes(config, workers=1)

    def check(_):
        for name, inputs in graph.mocks.of(CONTAINER).items():
            if name == "test-registry":
                continue
            assert K3S_TOKEN not in " ".join(inputs["command"])
            assert not any(K3S_TOKEN in e for e in inputs.get("envs") or [])
            uploads = {u["file"]: u["content"] for u in secret_value(inputs["uploads"])}
            assert uploads[k3s.TOKEN_FILE] == K3S_TOKEN
            registries = yaml.safe_load(uploads[k3s.REGISTRIES_FILE])
            assert registries == {"mirrors": {"172.28.0.2:5000": {"endpoint": ["http://172.28.0.2:5000"]}}}
            assert uploads[k3s.NODE_PASSWORD_FILE].strip() == k3s.node_password(K3S_TOKEN, name).strip()
    return pulumi.Output.all(*[r.urn for n in nodes.nodes for r in n.ready]).apply(check)


def test_node_passwords_are_stable_per_node_and_differ_between_nodes():
    assert k3s.node_password("t", "a") == k3s.node_password("t", "a")
    assert k3s.node_password("t", "a") != k3s.node_password("t", "b")
    assert k3s.node_password("t", "a") != k3s.node_password("u", "a")


@pulumi.runtime.test
def test_first_server_publishes_api_and_entry_on_the_bind_address(graph, config):
    _, nodes = container_nodes(config, managers=3, publishedPort=9090, bindAddress="127.0.0.1")

    def check(_):
        c = graph.mocks.of(CONTAINER)
        assert sorted(c["test-m0"]["ports"], key=lambda p: p["internal"]) == [
            {"internal": 80, "external": 9090, "ip": "127.0.0.1"},
            {"internal": 6443, "external": 6443, "ip": "127.0.0.1"}]
        assert "ports" not in c["test-m1"] and "ports" not in c["test-w1"]
    return pulumi.Output.all(*[r.urn for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_token_is_made_once_secret_and_never_remade(graph, config):
    _, nodes = container_nodes(config, workers=2)

    def check(_):
        tokens = {k: v for k, v in graph.mocks.of(LOCAL).items() if "secrets.token_hex" in v["create"]}
        assert list(tokens) == ["test-k3s-token"], "one token for all nodes"
        inputs = tokens["test-k3s-token"]
        assert "triggers" not in inputs, "a trigger would make a new token"
        assert inputs["logging"] == "stderr", "stdout (the token) must not be logged"
        request = graph.requests["test-k3s-token"]
        assert list(request.additionalSecretOutputs) == ["stdout"]
        assert "create" in request.ignoreChanges
    return pulumi.Output.all(*[r.urn for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_token_output_is_secret(graph):
    token = k3s.cluster_token("t")

    async def check(value):
        assert value == K3S_TOKEN
        assert await token.is_secret()
    return token.apply(check)


# --- the cluster on container nodes ---------------------------------------------------------------

def container_cluster(config, **raw):
    cfg, nodes = container_nodes(config, **raw)
    cluster = K3s("k", {"nodes": nodes.nodes, "version": cfg.k3s.version, "in_container": True})
    return cfg, nodes, cluster


@pulumi.runtime.test
def test_members_wait_for_the_first_server_and_their_container(graph, config):
    _, nodes, cluster = container_cluster(config, workers=2)

    def check(_):
        cmds = graph.mocks.of(LOCAL)
        assert action(cmds["k-ready"]) == ("wait-server", [])
        assert exec_target(cmds["k-ready"]["create"]) == "test-m0"
        assert graph.deps("k-ready") == {"test-m0"}
        assert graph.deps("k-kubeconfig") == {"test-m0", "k-ready"}
        for name in ("test-w1", "test-w2"):
            member = cmds[f"k-member-{name}"]
            assert exec_target(member["create"]) == "test-m0", "membership is checked on the first server"
            assert action(member) == ("wait-node", [name])
            assert _script_action(member["delete"]) == ("remove", [name])
            assert graph.deps(f"k-member-{name}") == {"test-m0", "k-ready", name}
            assert "triggers" not in member, "a replaced record would delete its re-joined node"
        assert "delete" not in cmds["k-member-test-m0"]
        assert not any(action(c)[0] == "install" for c in cmds.values()), "containers run k3s already"
        assert [r for r in cluster.ready] == [r for r in cluster.ready if isinstance(r, pulumi.CustomResource)]
    return settled(*cluster.ready).apply(check)


@pulumi.runtime.test
def test_kubeconfig_is_secret_and_points_at_the_published_api(graph, config):
    _, _, cluster = container_cluster(config, bindAddress="127.0.0.1")

    async def check(values):
        text = values[0]
        assert await cluster.kubeconfig.is_secret()
        doc = yaml.safe_load(text)
        assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
        assert doc["current-context"] == "phoenix-test"
        assert doc["contexts"][0]["context"] == {"cluster": "phoenix-test", "user": "phoenix-test"}
        assert graph.requests["k-kubeconfig"].additionalSecretOutputs == ["stdout"]
    return pulumi.Output.all(cluster.kubeconfig).apply(check)


def test_user_kubeconfig_rewrites_server_and_names():
    from tests.unit.conftest import K3S_KUBECONFIG
    doc = yaml.safe_load(user_kubeconfig(K3S_KUBECONFIG, "https://203.0.113.5:6443", "phoenix-prod"))
    assert [c["cluster"]["server"] for c in doc["clusters"]] == ["https://203.0.113.5:6443"]
    assert doc["users"][0]["name"] == "phoenix-prod" and doc["users"][0]["user"]["client-key-data"]
    assert user_kubeconfig("", "https://x:6443", "n") == ""


def test_even_server_count_is_refused(graph):
    with pytest.raises(ValueError, match="odd number of server nodes"):
        K3s("k", {"nodes": host_nodes(servers=2, agents=0), "version": "v1.31.4+k3s1", "in_container": False})


# --- hosts and VMs -----------------------------------------------------------------------------

def host_cluster(**kw):
    nodes = host_nodes(**{k: v for k, v in kw.items() if k in ("servers", "agents", "public")})
    args = {"nodes": nodes, "version": "v1.31.4+k3s1", "in_container": False, "entry_port": 8080,
            **{k: v for k, v in kw.items() if k in ("airgap_dir", "registry")}}
    return nodes, K3s("k", args)


@pulumi.runtime.test
def test_hosts_install_first_server_then_join_with_its_url_and_the_token(graph):
    _, cluster = host_cluster(servers=3, agents=2)

    def check(_):
        cmds = graph.mocks.of(REMOTE)
        installs = {n: action(cmds[f"k-install-{n}"]) for n in ("s0", "s1", "s2", "a0", "a1")}
        assert installs["s0"][1][:3] == ["server", "v1.31.4+k3s1", ""]
        assert "--cluster-init" in installs["s0"][1]
        for n in ("s1", "s2"):
            assert installs[n][1][0] == "server" and "--server=https://10.0.0.10:6443" in installs[n][1]
        for n in ("a0", "a1"):
            assert installs[n][1][0] == "agent" and "--server=https://10.0.0.10:6443" in installs[n][1]
            assert graph.deps(f"k-install-{n}") >= {"k-install-s0"}, "agents join after the first server"
        assert "k-install-s0" not in graph.deps("k-install-s0")
        for n in installs:
            inputs = cmds[f"k-install-{n}"]
            assert secret_value(inputs["stdin"]) == K3S_TOKEN + "\n"
            assert K3S_TOKEN not in inputs["create"]
            assert _script_action(inputs["delete"]) == ("uninstall", [])
            assert secret_value(inputs["connection"])["host"] == f"203.0.113.{10 + list(installs).index(n)}"
            assert graph.requests[f"k-install-{n}"].deleteBeforeReplace
        assert graph.deps("k-ready") >= {"k-install-s0"}
        assert "--tls-san=203.0.113.10" in installs["s0"][1]
        assert "--node-external-ip=203.0.113.11" in installs["s1"][1]
        assert graph.deps("k-member-a0") >= {"k-install-a0", "k-ready"}
        # Servers join one at a time: each after the previous one is a Ready member (etcd admits one
        # learner at a time); agents only wait for the first server.
        assert graph.deps("k-install-s1") >= {"k-member-s0"}
        assert graph.deps("k-install-s2") >= {"k-member-s1"}
        for n in ("a0", "a1"):
            assert not graph.deps(f"k-install-{n}") & {"k-member-s1", "k-member-s2"}
    return settled(*cluster.ready).apply(check)


@pulumi.runtime.test
def test_hosts_kubeconfig_points_at_the_first_servers_public_address(graph):
    _, cluster = host_cluster()

    def check(text):
        assert yaml.safe_load(text)["clusters"][0]["cluster"]["server"] == "https://203.0.113.10:6443"
    return cluster.kubeconfig.apply(check)


@pulumi.runtime.test
def test_hosts_get_traefik_on_the_entry_port_and_the_registry_mirror(graph):
    _, cluster = host_cluster(servers=1, agents=1, registry="10.0.0.2:5000")

    def check(_):
        cmds = graph.mocks.of(REMOTE)
        traefik = cmds["k-traefik-s0"]
        assert action(traefik) == ("put", [k3s.TRAEFIK_CONFIG_FILE, "0600"])
        config = yaml.safe_load(yaml.safe_load(traefik["stdin"])["spec"]["valuesContent"])
        assert config == {"ports": {"web": {"exposedPort": 8080}}}
        assert "k-traefik-a0" not in cmds, "only servers deploy manifests"
        assert action(cmds["k-registries-a0"]) == ("put", [k3s.REGISTRIES_FILE, "0600"])
        assert graph.deps("k-install-a0") >= {"k-registries-a0"}
        assert graph.deps("k-install-s0") >= {"k-traefik-s0"}
    return settled(*cluster.ready).apply(check)


@pulumi.runtime.test
def test_airgap_files_are_copied_before_the_install(graph, tmp_path):
    for name in ("k3s", "install.sh", "k3s-airgap-images-amd64.tar.zst"):
        (tmp_path / name).write_text(name)
    _, cluster = host_cluster(servers=1, agents=1, airgap_dir=str(tmp_path))

    def check(_):
        copies = graph.mocks.of("command:remote:CopyToRemote")
        assert sorted(copies) == sorted(f"k-airgap-{n}-{f}" for n in ("s0", "a0")
                                        for f in ("k3s", "install.sh", "k3s-airgap-images-amd64.tar.zst"))
        assert copies["k-airgap-a0-k3s"]["remotePath"] == f"{k3s.AIRGAP_STAGE}/k3s"
        install = graph.mocks.of(REMOTE)["k-install-a0"]
        assert action(install)[1][:3] == ["agent", "v1.31.4+k3s1", k3s.AIRGAP_STAGE]
        assert graph.deps("k-install-a0") >= {f"k-airgap-a0-{f}" for f in ("k3s", "install.sh")}
    return settled(*cluster.ready).apply(check)


def test_airgap_dir_without_the_install_script_is_refused(tmp_path):
    (tmp_path / "k3s").write_text("bin")
    with pytest.raises(Exception, match="k3sAirgapDir.*install.sh missing.*no k3s-airgap-images"):
        k3s.airgap_files(str(tmp_path))


# --- deploy (what cluster.py calls) -------------------------------------------------------------

def test_deploy_exports_the_kubeconfig_only_as_a_secret_and_apps_use_its_provider(graph, config):
    from components.apps.spec import sample_services

    @pulumi.runtime.test
    def deploy():
        cfg, nodes = container_nodes(config, workers=2)
        deployed = k3s.ORCHESTRATOR.deploy("phoenix", cfg, nodes.nodes, sample_services(cfg.app), "img:1", pulumi.ResourceOptions())

        async def check(values):
            api, _ = values
            assert set(deployed.secrets) == {"kubeconfig"}
            assert await deployed.secrets["kubeconfig"].is_secret()
            assert deployed.outputs == {"kubernetesApi": deployed.outputs["kubernetesApi"]}
            assert api == "https://127.0.0.1:6443"
            assert deployed.manager_address == "172.28.0.10"
        return pulumi.Output.all(deployed.outputs["kubernetesApi"], deployed.secrets["kubeconfig"]).apply(check)

    deploy()  # returns once every registration is done
    k8s_objects = [r for r in graph.mocks.resources if r.typ.startswith("kubernetes:")]
    assert len(k8s_objects) >= 10
    assert all("::phoenix-kubernetes::" in (r.provider or "") for r in k8s_objects), \
        [(r.name, r.provider) for r in k8s_objects]
    # The provider is the first server's kubeconfig and waits until every node is a Ready member.
    provider = graph.mocks.of("pulumi:providers:kubernetes")["phoenix-kubernetes"]
    assert "server: https://127.0.0.1:6443" in secret_value(provider["kubeconfig"])
    assert graph.deps("phoenix-kubernetes") >= {f"phoenix-k3s-member-{n}" for n in ("test-m0", "test-w1", "test-w2")}
    # A failed version is rolled back on every Kubernetes cluster; phoenix mode (off here) adds its own CronJob.
    assert sorted(graph.mocks.of("kubernetes:batch/v1:CronJob")) == ["phoenix-rollback-cronjob"]


@pytest.mark.parametrize("substrate, policy", [("docker", "IfNotPresent"), ("ssh", "Never")])
def test_pods_never_pull_the_app_image_on_hosts(graph, config, substrate, policy):
    import json
    from components.apps.spec import sample_services
    hosts = json.dumps([{"name": "s0", "address": "203.0.113.10", "role": "manager"}])
    raw = {"hosts": hosts, "sshPrivateKey": "(secret)"} if substrate == "ssh" else {}
    cfg = config(orchestrator="k3s", substrate=substrate, phoenix=True, **raw)

    @pulumi.runtime.test
    def deploy():
        nodes = host_nodes(servers=1, agents=0) if substrate == "ssh" else container_nodes(config)[1].nodes
        deployed = k3s.ORCHESTRATOR.deploy("phoenix", cfg, nodes, sample_services(cfg.app), "phoenix/sample-app:1",
                              pulumi.ResourceOptions())
        return deployed.secrets["kubeconfig"]

    deploy()
    deployments = graph.mocks.of("kubernetes:apps/v1:Deployment")
    assert deployments
    for inputs in deployments.values():
        assert {c["imagePullPolicy"] for c in inputs["spec"]["template"]["spec"]["containers"]} == {policy}
    cronjobs = graph.mocks.of("kubernetes:batch/v1:CronJob")  # the controllers: rollback, phoenix
    assert len(cronjobs) == 2
    for cronjob in cronjobs.values():
        containers = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert {c["imagePullPolicy"] for c in containers} == {policy}


# --- the whole program ----------------------------------------------------------------------------

@pulumi.runtime.test
def test_program_on_k3s_exports_the_kubeconfig_only_as_a_secret(mocks, exports):
    from tests.unit.conftest import K3S_KUBECONFIG
    run_program(orchestrator="k3s", workers=2)

    async def check():
        assert exports["orchestrator"] == "k3s"
        for key, value in exports.items():
            output = pulumi.Output.from_input(value)
            text = str(await output.future(with_unknowns=True))
            if key == "kubeconfig":
                assert await output.is_secret()
                assert "client-key-data" in text
            else:
                assert K3S_TOKEN not in text and "S0VZLVNFQ1JFVA==" not in text, f"{key} leaks a secret"
        assert "client-key-data" in K3S_KUBECONFIG
        assert await pulumi.Output.from_input(exports["kubernetesApi"]).future() == "https://127.0.0.1:6443"
        assert await pulumi.Output.from_input(exports["appUrl"]).future() == "http://127.0.0.1:8080/"
    return pulumi.Output.from_input(exports["kubeconfig"]).apply(lambda _: check())

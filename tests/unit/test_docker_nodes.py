"""Container nodes: count, names, roles, images, labels, fixed addresses, volumes, privileges."""
import pulumi

from components.nodes.docker_nodes import DockerNodes, NodeRuntime, node_names
from components.orchestrators import swarm
from tests.unit.conftest import settled

CONTAINER = "docker:index/container:Container"


def build(config, **raw):
    cfg = config(**raw)
    return DockerNodes("test", {"config": cfg.nodes, "runtime": swarm.ORCHESTRATOR.container_runtime(cfg),
                                "bind_address": cfg.app.bind_address, "labels": cfg.labels})


def labels(inputs) -> dict:
    return {entry["label"]: entry["value"] for entry in inputs["labels"]}


def test_node_names_put_managers_first():
    assert node_names("dev", 3, 2) == [("dev-m0", "manager"), ("dev-m1", "manager"), ("dev-m2", "manager"),
                                       ("dev-w1", "worker"), ("dev-w2", "worker")]


@pulumi.runtime.test
def test_one_container_per_node_with_role_and_stack_labels(mocks, config):
    nodes = build(config, managers=3, workers=4)

    def check(_):
        containers = {k: v for k, v in mocks.of(CONTAINER).items() if k != "test-registry"}
        assert sorted(containers) == ["test-m0", "test-m1", "test-m2", "test-w1", "test-w2", "test-w3", "test-w4"]
        for name, inputs in containers.items():
            role = "manager" if "-m" in name else "worker"
            assert labels(inputs) == {"io.phoenix.project": "phoenix", "io.phoenix.stack": "test",
                                      "io.phoenix.role": role}
            assert inputs["hostname"] == name
        assert [n.role for n in nodes.nodes] == ["manager"] * 3 + ["worker"] * 4
    return settled(*[r for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_nodes_get_fixed_addresses_in_the_subnet(mocks, config):
    nodes = build(config, subnet="10.9.0.0/24", managers=1, workers=2)

    def check(_):
        assert [n.address for n in nodes.nodes] == ["10.9.0.10", "10.9.0.100", "10.9.0.101"]
        containers = mocks.of(CONTAINER)
        assert containers["test-w2"]["networksAdvanced"][0]["ipv4Address"] == "10.9.0.101"
        network = next(iter(mocks.of("docker:index/network:Network").values()))
        assert network["ipamConfigs"][0]["subnet"] == "10.9.0.0/24"
        assert containers["test-registry"]["networksAdvanced"][0]["ipv4Address"] == "10.9.0.2"
        assert nodes.registry.pull == "10.9.0.2:5000"
    return settled(*nodes.nodes[-1].ready).apply(check)


@pulumi.runtime.test
def test_node_image_and_data_volume(mocks, config):
    nodes = build(config, nodeImage="local/swarm-node:bookworm", workers=1)

    def check(_):
        images = {i["name"] for i in mocks.of("docker:index/remoteImage:RemoteImage").values()}
        assert "local/swarm-node:bookworm" in images
        m0 = mocks.of(CONTAINER)["test-m0"]
        assert m0["image"] == "sha256:local/swarm-node:bookworm"
        assert {"volumeName": "phoenix-test-m0", "containerPath": "/var/lib/docker"} in m0["volumes"]
        volumes = mocks.of("docker:index/volume:Volume")
        assert labels(volumes["test-m0-data"])["io.phoenix.stack"] == "test"
        assert m0["restart"] == "unless-stopped"
    return settled(*nodes.nodes[0].ready).apply(check)


@pulumi.runtime.test
def test_privileged_by_default(mocks, config):
    nodes = build(config)

    def check(_):
        m0 = mocks.of(CONTAINER)["test-m0"]
        assert m0["privileged"] is True
        assert "capabilities" not in m0
    return settled(*nodes.nodes[0].ready).apply(check)


@pulumi.runtime.test
def test_explicit_capabilities_when_privileged_is_off(mocks, config):
    nodes = build(config, privileged=False, capDrop=["SYS_RESOURCE", "SYS_MODULE"])

    def check(_):
        m0 = mocks.of(CONTAINER)["test-m0"]
        assert "privileged" not in m0
        assert m0["capabilities"] == {"adds": ["ALL"], "drops": ["CAP_SYS_RESOURCE", "CAP_SYS_MODULE"]}
        assert set(m0["securityOpts"]) == {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"}
        assert m0["cgroupnsMode"] == "host"
        assert m0["tmpfs"] == {"/run": "rw", "/var/run": "rw"}
    return settled(*nodes.nodes[0].ready).apply(check)


@pulumi.runtime.test
def test_only_first_manager_publishes_the_entry_port_on_the_bind_address(mocks, config):
    nodes = build(config, publishedPort=9090, bindAddress="127.0.0.1", managers=3)

    def check(_):
        containers = mocks.of(CONTAINER)
        assert containers["test-m0"]["ports"] == [{"internal": 9090, "external": 9090, "ip": "127.0.0.1"}]
        for name in ("test-m1", "test-m2", "test-w1"):
            assert "ports" not in containers[name]
        assert containers["test-registry"]["ports"][0]["ip"] == "127.0.0.1"
    return settled(*[r for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_dockerd_listens_on_a_shared_socket_not_tcp(mocks, config):
    nodes = build(config, socketDir="/tmp/ph")

    def check(_):
        m0 = mocks.of(CONTAINER)["test-m0"]
        assert m0["command"][0] == "dockerd"
        assert "--host=unix:///phoenix/docker.sock" in m0["command"]
        assert "--insecure-registry=172.28.0.2:5000" in m0["command"]
        assert not any("tcp://" in arg for arg in m0["command"])
        assert {"hostPath": "/tmp/ph/test-m0", "containerPath": "/phoenix"} in m0["volumes"]
        assert nodes.nodes[0].docker_host == "unix:///tmp/ph/test-m0/docker.sock"
    return settled(*nodes.nodes[0].ready).apply(check)


@pulumi.runtime.test
def test_resource_limits(mocks, config):
    nodes = build(config, nodeMilliCpus=1500, nodeMemoryMb=1024)

    def check(_):
        m0 = mocks.of(CONTAINER)["test-m0"]
        assert m0["cpus"] == "1.5" and m0["memory"] == 1024
    return settled(*nodes.nodes[0].ready).apply(check)


@pulumi.runtime.test
def test_each_node_shared_directory_is_removed_with_the_node(mocks, config):
    nodes = build(config, socketDir="/tmp/px", workers=1)

    def check(_):
        commands = mocks.of("command:local:Command")
        assert sorted(commands) == ["test-m0-shared", "test-w1-shared"]
        assert commands["test-w1-shared"]["create"] == "mkdir -p /tmp/px/test-w1"
        assert commands["test-w1-shared"]["delete"].startswith("rm -rf /tmp/px/test-w1 && { rmdir /tmp/px ")
        assert mocks.of(CONTAINER)["test-w1"]["volumes"][1]["hostPath"] == "/tmp/px/test-w1"
    return settled(*[r for n in nodes.nodes for r in n.ready]).apply(check)


@pulumi.runtime.test
def test_commands_on_a_node_undo_their_work_on_that_very_container(mocks, config):
    # Not on a successor of the same name (DockerExec.id): a replaced node must not leave the swarm.
    nodes = build(config, managers=1, workers=1)

    def check(ids):
        assert ids == ["test-m0-id", "test-w1-id"]
    return pulumi.Output.all(*[n.connection.id for n in nodes.nodes]).apply(check)

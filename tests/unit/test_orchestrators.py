"""The orchestrator registry and interface: orchestrators are found by module name, every one provides
the whole interface, and a new orchestrator is one new file (a fake one, written into the package's
search path by the test, is validated, gets container nodes and deploys through the Cluster)."""
import re
import sys
import textwrap

import pulumi
import pytest

import components.orchestrators as registry
from components.config import ConfigError, parse
from components.nodes.cloud_vms import PREREQUISITE_PACKAGES, firewall_rules
from components.nodes.docker_nodes import NodeRuntime
from components.nodes.node import Port
from components.orchestrators.orchestrator import Orchestrator
from tests.unit.test_program import exports, run_program  # noqa: F401 (`exports` is a fixture)

FAKE = textwrap.dedent('''
    """A fake orchestrator: the one file a new orchestrator needs."""
    from components.apps.app_image import ImageLoader
    from components.nodes.docker_nodes import NodeRuntime
    from components.nodes.node import Port
    from components.orchestrators.orchestrator import Deployment, Orchestrator
    from pulumi_command import local

    class FakeOrchestrator(Orchestrator):
        name = "fake"
        default_node_image = "example/fake-node:1"
        ports = (Port("tcp", 7001, purpose="control"), Port("tcp", 7002, between="servers", purpose="state"),
                 Port("tcp", 7003, admins=True, purpose="api"), Port("tcp", 7004, between="local"))
        host_prerequisites = ("docker",)
        image_loader = ImageLoader(load=lambda name: ["load"], check=lambda ref: ["check", ref],
                                   remove=lambda ref: ["remove", ref])

        def validate(self, cfg, bad):
            if cfg.nodes.workers > 3:
                bad("workers", cfg.nodes.workers, "at most 3 for orchestrator fake")
            return cfg

        def container_runtime(self, cfg, opts=None):
            return NodeRuntime(command=lambda ctx: ["fake-node", ctx.role, "--join", ctx.first_manager],
                               data_dir="/var/lib/fake")

        def deploy(self, name, cfg, nodes, services, image, opts):
            for node in nodes:
                node.run(f"{name}-fake-{node.name}", ["fake", "join"], parent=opts.parent)
            return Deployment(manager_address=nodes[0].address, outputs={"fakeServices": [s.name for s in services]})

    ORCHESTRATOR = FakeOrchestrator()
''')


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """components/orchestrators/fake.py, as far as the registry and importlib can tell."""
    (tmp_path / "fake.py").write_text(FAKE)
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    yield
    sys.modules.pop("components.orchestrators.fake", None)


def test_orchestrators_are_found_by_module_name():
    assert registry.names() == ["k3s", "kubeadm", "swarm"]
    assert registry.get("swarm").name == "swarm" and registry.get("k3s").name == "k3s"


@pytest.mark.parametrize("name", ["nomad", "kubernetes", "orchestrator", "_private", "", None])
def test_an_unknown_name_is_refused_with_the_valid_ones(name):
    # Shared modules of the package (kubernetes.py, orchestrator.py) are no orchestrators.
    with pytest.raises(registry.UnknownOrchestrator, match=r"choose one of k3s, kubeadm, swarm$"):
        registry.get(name)


def test_config_refuses_an_unknown_orchestrator_listing_the_valid_ones():
    with pytest.raises(ConfigError, match=r"phoenix:orchestrator = 'nomad' is invalid: choose one of k3s, kubeadm, swarm"):
        parse({"orchestrator": "nomad"}, "dev")


@pytest.mark.parametrize("name", registry.names())
def test_every_orchestrator_provides_the_whole_interface(mocks, config, name):
    orchestrator = registry.get(name)
    assert isinstance(orchestrator, Orchestrator) and orchestrator.name == name
    assert orchestrator.default_node_image
    assert orchestrator.ports and all(isinstance(p, Port) for p in orchestrator.ports)
    for port in orchestrator.ports:
        assert port.protocol in ("tcp", "udp") and port.between in ("nodes", "servers", "local"), port
    # prepare.sh and cloud-init know how to install every prerequisite.
    assert set(orchestrator.host_prerequisites) <= set(PREREQUISITE_PACKAGES)
    cfg = config(orchestrator=name)
    assert cfg.nodes.image.startswith(orchestrator.default_node_image)
    assert isinstance(orchestrator.container_runtime(cfg), NodeRuntime)


def test_an_abstract_orchestrator_must_say_what_it_is():
    with pytest.raises(TypeError, match="does not define default_node_image, ports, host_prerequisites"):
        type("Half", (Orchestrator,), {"name": "half"})


def test_a_new_orchestrator_is_one_file_the_config_accepts(fake):
    assert registry.names() == ["fake", "k3s", "kubeadm", "swarm"]
    cfg = parse({"orchestrator": "fake"}, "dev")
    assert (cfg.orchestrator, cfg.nodes.image) == ("fake", "example/fake-node:1")
    with pytest.raises(ConfigError) as err:
        parse({"orchestrator": "fake", "workers": 4, "publishedPort": 7003, "registryPort": 2377}, "dev")
    message = str(err.value)
    assert "phoenix:workers = 4 is invalid: at most 3 for orchestrator fake" in message
    assert re.search(r"phoenix:publishedPort = 7003 is invalid: port is used by the orchestrator fake", message)
    assert "registryPort" not in message, "Swarm's ports are free when Swarm is not the orchestrator"


def test_a_new_orchestrators_ports_shape_the_cloud_firewall(fake):
    rules = firewall_rules(registry.get("fake"), "10.0.0.0/16", ["10.0.0.10"], ["198.51.100.0/24"], 8080)
    opened = {(r.port, tuple(r.source_ips)) for r in rules}
    assert opened == {("22", ("198.51.100.0/24",)), ("8080", ("0.0.0.0/0", "::/0")),
                      ("7001", ("10.0.0.0/16",)), ("7002", ("10.0.0.10/32",)),
                      ("7003", ("198.51.100.0/24",)), ("7003", ("10.0.0.0/16",)),
                      ("2376", ("198.51.100.0/24",))}  # hosts with docker: the engine gateway, for admins


def test_the_cluster_deploys_a_new_orchestrator_chosen_by_name(mocks, exports, fake):  # noqa: F811
    services = []

    @pulumi.runtime.test
    def program():  # returns once every resource is registered and every Output settled
        run_program(orchestrator="fake", workers=1)
        return pulumi.Output.from_input(exports["fakeServices"]).apply(services.extend)
    program()

    containers = mocks.of("docker:index/container:Container")
    assert containers["test-m0"]["command"] == ["fake-node", "manager", "--join", "172.28.0.10"]
    assert containers["test-w1"]["command"] == ["fake-node", "worker", "--join", "172.28.0.10"]
    assert sorted(k for k in mocks.of("command:local:Command") if "-fake-" in k) == \
        ["phoenix-fake-test-m0", "phoenix-fake-test-w1"]
    assert services == ["api", "web"]
    assert not any(r.typ.startswith(("docker:index/service", "kubernetes:")) for r in mocks.resources)

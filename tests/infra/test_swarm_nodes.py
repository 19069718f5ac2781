"""Every Swarm node: its engine runs and it is an active member with the role the stack gave it."""
import pytest

from tests.infra import stack

testinfra_hosts = stack.hosts()
pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(bool(stack.skip_reason()), reason=stack.skip_reason() or "-")]
# testinfra names a host by container name (docker://) or address (ssh://).
ROLE = {**{n["name"]: n["role"] for n in stack.nodes()}, **{n["address"]: n["role"] for n in stack.nodes()}}


def test_dockerd_runs(host):
    assert host.process.filter(comm="dockerd"), "no dockerd process"
    assert host.run("docker info").rc == 0


def test_swarm_is_active(host):
    assert host.check_output("docker info --format '{{.Swarm.LocalNodeState}}'") == "active"


def test_role_matches_the_stack(host):
    is_manager = host.check_output("docker info --format '{{.Swarm.ControlAvailable}}'") == "true"
    assert is_manager == (ROLE[host.backend.get_hostname()] == "manager")


def test_app_containers_on_the_node_are_healthy(host):
    lines = host.check_output("docker ps --filter label=com.docker.swarm.service.name "
                              "--format '{{.Label \"com.docker.swarm.service.name\"}} {{.Status}}'").splitlines()
    unhealthy = [line for line in lines if "(healthy)" not in line]
    assert not unhealthy, f"containers not healthy: {unhealthy}"

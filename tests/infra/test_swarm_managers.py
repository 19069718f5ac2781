"""Swarm managers: they see every node Ready and every service at its replica count."""
import pytest

from tests.infra import stack

testinfra_hosts = stack.hosts("manager")
pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(bool(stack.skip_reason()), reason=stack.skip_reason() or "-")]


def test_manager_sees_every_node_ready_and_active(host):
    rows = host.check_output("docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'").splitlines()
    table = {r.split()[0]: tuple(r.split()[1:]) for r in rows}
    expected = {n["name"] for n in stack.nodes()}
    assert expected <= set(table), f"missing from the swarm: {expected - set(table)}"
    for name in expected:
        assert table[name] == ("Ready", "Active"), f"{name}: {table[name]}"


def test_managers_are_reachable_managers(host):
    status = host.check_output("docker node ls --filter role=manager --format '{{.ManagerStatus}}'").split()
    assert len(status) == len(stack.nodes("manager"))
    assert set(status) <= {"Leader", "Reachable"} and status.count("Leader") == 1


@pytest.mark.parametrize("service", ["web", "api"])
def test_services_run_all_their_replicas(host, service):
    replicas = host.check_output(f"docker service ls --filter name={service} --format '{{{{.Replicas}}}}'")
    running, desired = replicas.split()[0].split("/")
    assert int(desired) >= 1 and running == desired, f"{service}: {replicas}"


@pytest.mark.parametrize("service", ["web", "api"])
def test_service_tasks_are_spread_over_nodes(host, service):
    nodes = host.check_output(f"docker service ps {service} --filter desired-state=running "
                              "--format '{{.Node}}'").split()
    assert len(set(nodes)) == min(len(nodes), len(stack.nodes())), f"{service} tasks bunched on {nodes}"

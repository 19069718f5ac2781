"""Three Swarm managers on the test bed through `pulumi up` (stack hosts-ci3), then down to one:
the removed managers are demoted before they leave, the quorum holds throughout, the app keeps
answering, and `pulumi destroy` leaves every host as it was found."""
from __future__ import annotations

from tests.hosts.cycle import (assert_as_found, assert_served_by_several_containers_on_several_hosts,
                               module_fixtures, note_retries, replicas, swarm_nodes, timed, watch_nodes)

STACK, SUBNET = "hosts-ci3", "172.31.1.0/24"
HOSTS = {"m0": "manager", "m1": "manager", "m2": "manager", "w1": "worker"}


bed, found, stack, deployed = module_fixtures(STACK, SUBNET, list(HOSTS), HOSTS)


def test_three_managers_share_the_raft_quorum(bed, deployed):
    nodes = swarm_nodes(bed, "m0")
    assert {n: v[2] for n, v in nodes.items()} == {"m0": "Leader", "m1": "Reachable", "m2": "Reachable", "w1": ""}
    assert all(v[:2] == ("Ready", "Active") for v in nodes.values()), nodes
    assert_served_by_several_containers_on_several_hosts(deployed["appUrl"])


def test_going_down_to_one_manager_demotes_the_others_first(bed, stack, found, deployed):
    with watch_nodes(bed, "m0") as seen, timed(STACK, "managers 3 -> 1"):
        stack.set_hosts(bed.stack_hosts({"m0": "manager", "w1": "worker"}))
        stack.up()
    for name in ("m1", "m2"):
        # Listed without a manager status and drained: demoted, then drained, before it was removed.
        assert (name, "Drain", "") in seen, f"{name} was not seen demoted and drained: {set(r for r in seen if r[0] == name)}"
    nodes = swarm_nodes(bed, "m0")
    assert {n: v[2] for n, v in nodes.items()} == {"m0": "Leader", "w1": ""}
    assert replicas(bed, "m0")["web"] == "3/3"
    assert_as_found(bed, found, ["m1", "m2"])


def test_destroy_leaves_the_hosts_as_found(bed, stack, found, deployed):
    with timed(STACK, "destroy clean"):
        note_retries(STACK, stack.destroy())
    assert_as_found(bed, found)

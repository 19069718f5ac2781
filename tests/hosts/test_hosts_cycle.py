"""The SSH-hosts path through the real `pulumi up`, on the test bed (stack hosts-ci).

Swarm 1+2 on hosts reached only over SSH; the app at the stack's appUrl answered by several
containers on several hosts; the testinfra suite over ssh://; a second `up` with no changes; workers
2 -> 3 -> 2 with the removed host drained before it leaves; `pulumi destroy` leaving every host as it
was found (no swarm, no containers, images, networks, volumes or files of ours). The tests run in
file order and share one stack; each phase's time goes to the summary.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.hosts.cycle import (assert_a_second_up_changes_nothing, assert_as_found,
                               assert_destroy_leaves_the_hosts_as_found,
                               assert_served_by_several_containers_on_several_hosts, module_fixtures, replicas,
                               swarm_nodes, timed, watch_nodes)
from tests.hosts.stack import ROOT

STACK, SUBNET = "hosts-ci", "172.31.0.0/24"
HOSTS = {"m0": "manager", "w1": "worker", "w2": "worker"}
SPARE = "w3"
"""A bed host outside the stack until the scale-out."""


bed, found, stack, deployed = module_fixtures(STACK, SUBNET, [*HOSTS, SPARE], HOSTS)


def test_the_swarm_forms_on_the_hosts_and_the_app_answers_from_several_hosts(bed, deployed):
    assert deployed["appUrl"] == "http://172.31.0.10:8080/"
    assert {n["name"]: n["uri"] for n in deployed["nodes"]} == \
        {name: f"ssh://root@{bed.host(name).address}:22" for name in HOSTS}
    assert swarm_nodes(bed, "m0") == {"m0": ("Ready", "Active", "Leader"), "w1": ("Ready", "Active", ""),
                                      "w2": ("Ready", "Active", "")}
    assert_served_by_several_containers_on_several_hosts(deployed["appUrl"])


def test_no_host_pulled_the_app_image(bed, deployed):
    # Services name the image by the ID `docker load` gave it on each host: nothing was pulled.
    (image,) = {bed.ssh(bed.host("m0"), f"docker service inspect -f '{{{{.Spec.TaskTemplate.ContainerSpec.Image}}}}' {s}")
                .stdout.strip() for s in ("web", "api")}
    assert image.startswith("sha256:")
    for name in HOSTS:
        pulls = bed.ssh(bed.host(name), "grep -ci 'pulling image' /var/log/dockerd.log || true").stdout.strip()
        assert pulls == "0", f"{name}'s engine tried to pull images"


def test_the_infra_suite_passes_over_ssh(bed, deployed):
    outputs = bed.directory / "outputs.json"
    outputs.write_text(json.dumps(deployed))
    with timed(STACK, "infra passed"):
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/infra", "-q", "-p", "no:cacheprovider",
                               *bed.testinfra_args()], cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PHOENIX_OUTPUTS": str(outputs)})
        assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout.splitlines()[-1]


def test_a_second_up_changes_nothing(stack, deployed):
    assert_a_second_up_changes_nothing(STACK, stack)


def test_a_third_worker_joins_and_leaves_drained(bed, stack, found, deployed):
    with timed(STACK, "scale out"):
        stack.set_hosts(bed.stack_hosts({**HOSTS, SPARE: "worker"}))
        stack.up()
    assert swarm_nodes(bed, "m0")[SPARE] == ("Ready", "Active", "")
    # Tasks do not move to a new node by themselves: force a reschedule so that it has some to lose.
    for service in ("web", "api"):
        bed.ssh(bed.host("m0"), f"docker service update -q --force {service} >/dev/null")
    on_spare = bed.ssh(bed.host(SPARE), "docker ps -q --filter label=com.docker.swarm.service.name").stdout.split()
    assert on_spare, f"no app task was scheduled on {SPARE}"

    with watch_nodes(bed, "m0") as seen, timed(STACK, "scale in"):
        stack.set_hosts(bed.stack_hosts(HOSTS))
        stack.up()
    states = {availability for name, availability, _ in seen if name == SPARE}
    assert "Drain" in states, f"{SPARE} was never drained (availability seen: {sorted(states)})"
    assert SPARE not in swarm_nodes(bed, "m0")
    # The drained node's tasks run elsewhere before it is removed: `up` ends at full strength.
    assert replicas(bed, "m0") == {"web": "3/3", "api": "2/2", "edge": "1/1"}
    assert_as_found(bed, found, [SPARE])


def test_destroy_leaves_the_hosts_as_found(bed, stack, found, deployed):
    assert_destroy_leaves_the_hosts_as_found(STACK, stack, bed, found)

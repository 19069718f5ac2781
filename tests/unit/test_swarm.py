"""Swarm bootstrap wiring: init once on the first manager, joins with secret tokens, drain on removal."""

import pulumi

from components.nodes.node import DockerExec, Node
from components.orchestrators.swarm import Swarm
from tests.unit.conftest import exec_target, MANAGER_TOKEN, WORKER_TOKEN, _script_action, secret_value, settled

LOCAL = "command:local:Command"


DEPENDS_ON: dict[str, list[str]] = {}


class RecordingExec(DockerExec):
    """DockerExec that records each command's explicit dependencies (mocks do not see them)."""

    def command(self, name, argv, **kwargs):
        DEPENDS_ON[name] = [d._name for d in (kwargs["opts"].depends_on or [])]
        return super().command(name, argv, **kwargs)


def make_nodes(managers=1, workers=2):
    DEPENDS_ON.clear()
    names = [(f"m{i}", "manager") for i in range(managers)] + [(f"w{i}", "worker") for i in range(1, workers + 1)]
    return [Node(name=n, role=r, address=f"10.0.0.{i + 10}", connection=RecordingExec(n),
                 docker_host=f"unix:///tmp/{n}/docker.sock", public_address="127.0.0.1")
            for i, (n, r) in enumerate(names)]


def commands(mocks):
    """name -> (container the command runs in, action, args, inputs)."""
    out = {}
    for name, inputs in mocks.of(LOCAL).items():
        action, args = _script_action(inputs["create"])
        out[name] = (exec_target(inputs["create"]), action, args, inputs)
    return out


@pulumi.runtime.test
def test_first_manager_inits_and_the_others_join_it(mocks):
    swarm = Swarm("s", {"nodes": make_nodes(managers=3, workers=2)})

    def check(_):
        cmds = commands(mocks)
        assert cmds["s-init"][:3] == ("m0", "init", ["10.0.0.10"])
        assert cmds["s-tokens"][:2] == ("m0", "tokens")
        joins = {k: v for k, v in cmds.items() if v[1] == "join"}
        assert sorted(joins) == ["s-join-m1", "s-join-m2", "s-join-w1", "s-join-w2"]
        for name, (container, _, args, _) in joins.items():
            assert container == name.removeprefix("s-join-")
            assert args == [f"10.0.0.{ {'m1': 11, 'm2': 12, 'w1': 13, 'w2': 14}[container]}", "10.0.0.10"]
        assert "s-join-m0" not in cmds
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_joins_get_the_right_token_on_stdin_never_on_the_command_line(mocks):
    swarm = Swarm("s", {"nodes": make_nodes(managers=3, workers=1)})

    def check(_):
        cmds = commands(mocks)
        assert secret_value(cmds["s-join-m1"][3]["stdin"]) == MANAGER_TOKEN + "\n"
        assert secret_value(cmds["s-join-w1"][3]["stdin"]) == WORKER_TOKEN + "\n"
        for _, _, _, inputs in cmds.values():
            assert WORKER_TOKEN not in inputs["create"] and MANAGER_TOKEN not in inputs["create"]
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_joins_and_labels_wait_for_init(mocks):
    nodes = make_nodes(workers=1)
    swarm = Swarm("s", {"nodes": nodes})

    def check(_):
        deps = DEPENDS_ON
        assert deps["s-tokens"] == ["s-init"]
        assert deps["s-join-w1"] == ["s-init"]
        assert deps["s-member-w1"] == ["s-join-w1"]
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_managers_leaving_together_are_removed_one_after_the_other(mocks):
    # Deletes run in reverse dependency order: chained records remove m2, then m1, each removal's
    # quorum check seeing the previous one finished. Workers are removed side by side.
    nodes = make_nodes(managers=3, workers=2)
    swarm = Swarm("s", {"nodes": nodes})

    def check(_):
        deps = DEPENDS_ON
        assert deps["s-member-m1"] == ["s-join-m1", "s-member-m0"]
        assert deps["s-member-m2"] == ["s-join-m2", "s-member-m1"]
        assert deps["s-member-w1"] == ["s-join-w1"] and deps["s-member-w2"] == ["s-join-w2"]
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_tokens_are_secret(mocks):
    swarm = Swarm("s", {"nodes": make_nodes()})

    async def check():
        assert await swarm.worker_token.is_secret()
        assert await swarm.manager_token.is_secret()
    return pulumi.Output.from_input(swarm.worker_token).apply(lambda _: check())


@pulumi.runtime.test
def test_members_are_labelled_and_drained_on_removal(mocks):
    swarm = Swarm("s", {"nodes": make_nodes(workers=2)})

    def check(_):
        cmds = commands(mocks)
        container, action, args, inputs = cmds["s-member-w2"]
        assert (container, action) == ("m0", "label")
        assert args == ["node-10.0.0.12", "phoenix.node=w2", "phoenix.role=worker"]
        assert _script_action(inputs["delete"]) == ("remove", ["node-10.0.0.12"])
        # Its exit status is the delete's: a failed drain is not swallowed by a trailing `|| true`.
        assert "' swarm remove node-10.0.0.12 ;; *)" in inputs["delete"], inputs["delete"][-80:]
        # The first manager is never drained by its own membership record.
        assert "delete" not in cmds["s-member-m0"][3]
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_nodes_leave_the_swarm_when_deleted(mocks):
    swarm = Swarm("s", {"nodes": make_nodes(workers=1)})

    def check(_):
        cmds = commands(mocks)
        assert _script_action(cmds["s-join-w1"][3]["delete"])[0] == "leave"
        assert _script_action(cmds["s-init"][3]["delete"])[0] == "leave"
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_provider_talks_to_the_first_manager_socket(mocks):
    swarm = Swarm("s", {"nodes": make_nodes(managers=3)})

    def check(_):
        provider = mocks.of("pulumi:providers:docker")["s-manager"]
        assert provider["host"] == "unix:///tmp/m0/docker.sock"
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_replaced_machine_reruns_its_join(mocks):
    nodes = make_nodes(workers=1)
    w1 = nodes[1]
    nodes[1] = Node(**{**w1.__dict__, "replace_key": "container-abc"})
    swarm = Swarm("s", {"nodes": nodes})

    def check(_):
        assert "container-abc" in commands(mocks)["s-join-w1"][3]["triggers"]
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_token_command_does_not_log_its_stdout(mocks):
    swarm = Swarm("s", {"nodes": make_nodes()})

    def check(_):
        assert commands(mocks)["s-tokens"][3]["logging"] == "stderr"
        assert "logging" not in commands(mocks)["s-init"][3]
    return settled(swarm.provider).apply(check)


@pulumi.runtime.test
def test_every_node_pulls_the_app_image_while_the_swarm_forms(mocks):
    swarm = Swarm("s", {"nodes": make_nodes(workers=2), "image": "reg:5000/app:1@sha256:d"})

    def check(_):
        cmds = commands(mocks)
        pulls = {k: v for k, v in cmds.items() if v[1] == "pull"}
        assert {v[0]: v[2] for v in pulls.values()} == {n: ["reg:5000/app:1@sha256:d"] for n in ("m0", "w1", "w2")}
        # Pulls wait for their node only, not for init or joins: they overlap with the bootstrap.
        assert all(DEPENDS_ON[k] == [] for k in pulls)
    return settled(swarm.provider).apply(check)

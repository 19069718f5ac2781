"""The node description every substrate yields, and how to run a command on a node.

Orchestrators and apps see only `Node`: a name, a role, the address other nodes reach it at, and a
`Connection` that turns an argv into a Pulumi command resource (or, for tests and drills, into a
local argv). Whether the node is a container, a VM or an SSH host stays behind the Connection.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence

import pulumi
from pulumi_command import local, remote


class Connection(Protocol):
    """How to run a command on one node."""

    @property
    def uri(self) -> pulumi.Input[str]:
        """The node as a testinfra host spec (docker://NAME, ssh://USER@HOST:PORT)."""

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs `argv` on the node (stdin is passed through)."""

    def command(self, name: str, argv: pulumi.Input[Sequence[str]], *, stdin: pulumi.Input[str] | None = None,
                delete: pulumi.Input[Sequence[str]] | None = None, triggers: Sequence[pulumi.Input] | None = None,
                secret_stdout: bool = False, opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
        """A Pulumi command resource that runs `argv` on the node when created (and `delete` when deleted)."""

    def pipe(self, name: str, producer: str, argv: Sequence[str], *, triggers: Sequence[pulumi.Input] | None = None,
             opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
        """A local command resource: `producer` (a shell line on the Pulumi host) piped into `argv` on the node.

        Streams bytes the remote command's string stdin cannot carry (`docker save | docker load`).
        """


def _shell(to_argv, argv: pulumi.Input[Sequence[str]] | None):
    """The shell line for an argv that may still be an Output (e.g. it names a node ID).

    A failure is never swallowed, on delete either: a failed drain, demote or leave must fail the run.
    Deletes that may find their machine gone check that first (DockerExec.command).
    """
    if argv is None:
        return None
    return pulumi.Output.from_input(argv).apply(lambda a: shlex.join(to_argv(a)))


def _command_opts(opts: pulumi.ResourceOptions | None, secret_stdout: bool) -> pulumi.ResourceOptions:
    # Secret outputs are declared by the caller (join tokens, kubeconfig): never printed, stored encrypted.
    extra = pulumi.ResourceOptions(additional_secret_outputs=["stdout"] if secret_stdout else None)
    return pulumi.ResourceOptions.merge(extra, opts)


SCRIPT_VARIABLE = "PHOENIX_SCRIPT"


def _lift_script(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """A script's argv (`sh -c SCRIPT PROGRAM ARGS`, script_argv) with the script's text moved into the
    environment: the command line, which Pulumi prints whole when a step fails, stays one line."""
    argv = list(argv)
    if len(argv) > 3 and argv[:2] == ["sh", "-c"] and "\n" in argv[2]:
        return ["sh", "-c", f'eval "${SCRIPT_VARIABLE}"', *argv[3:]], {SCRIPT_VARIABLE: argv[2]}
    return argv, {}


@dataclass(frozen=True)
class DockerExec:
    """A container on the Docker engine that runs Pulumi: commands go through `docker exec`."""

    container: str
    id: Optional[pulumi.Input[str]] = None
    """The container's ID. Deletes then act on that very container: a command made for a container
    that has since been replaced under the same name must not undo anything on its successor."""

    @property
    def uri(self) -> str:
        return f"docker://{self.container}"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["docker", "exec", "-i", self.container, *argv]

    @staticmethod
    def gone_or(match: str, line: str) -> str:
        """`line`, unless the container that `docker ps --filter match` finds verifiably no longer exists
        or does not run.

        Gone: nothing is left to undo. Stopped (by hand, or by a drill): nothing can run in it, and the
        node's own step is moot, since its membership is undone from the leader and the container is
        deleted after this command. An engine that does not answer is no proof: `docker ps` fails, and
        so does the line.
        """
        return (f'state=$(docker ps -a --filter {shlex.quote(match)} --format "{{{{.State}}}}") && case "$state" in '
                f'"") ;; running) {line} ;; '
                f'*) echo "container {match} is $state: its own step is skipped" >&2 ;; esac')

    def _exec(self, target: str, argv: Sequence[str]) -> list[str]:
        """`docker exec` of argv in `target`; a script's text passes through the environment."""
        argv, env = _lift_script(argv)
        return ["docker", "exec", "-i", *[a for k in env for a in ("-e", k)], target, *argv]

    def _delete(self, delete: pulumi.Input[Sequence[str]]) -> pulumi.Output[str]:
        def line(values: list) -> str:
            argv, container_id = values
            target, match = (container_id, f"id={container_id}") if container_id else \
                (self.container, f"name=^{self.container}$")
            return self.gone_or(match, shlex.join(self._exec(target, argv)))
        return pulumi.Output.all(delete, self.id).apply(line)

    @staticmethod
    def _environment(argv, delete) -> pulumi.Output[dict[str, str]]:
        """The variables the create and delete lines read (one script for both)."""
        def merged(values: list) -> dict[str, str]:
            env: dict[str, str] = {}
            for one in values:
                for key, value in (_lift_script(one)[1] if one is not None else {}).items():
                    if env.setdefault(key, value) != value:
                        raise ValueError("a command's create and delete run different scripts")
            return env
        return pulumi.Output.all(argv, delete).apply(merged)

    def command(self, name, argv, *, stdin=None, delete=None, triggers=None, secret_stdout=False, opts=None):
        return local.Command(
            name,
            create=_shell(lambda a: self._exec(self.container, a), argv),
            delete=None if delete is None else self._delete(delete),
            environment=self._environment(argv, delete),
            stdin=stdin,
            triggers=triggers,
            # A secret stdout must not be streamed to the `pulumi up` log either.
            logging=local.Logging.STDERR if secret_stdout else None,
            opts=_command_opts(opts, secret_stdout),
        )

    def pipe(self, name, producer, argv, *, triggers=None, opts=None):
        return local.Command(name, create=f"{producer} | {shlex.join(self._exec(self.container, argv))}",
                             environment=_lift_script(argv)[1] or None, triggers=triggers, opts=opts)


@dataclass(frozen=True)
class Ssh:
    """A host reached over SSH: commands go through pulumi-command's remote connection.

    Every connection Pulumi makes (remote commands, the image pipe) authenticates with `private_key`
    only (never an agent or the operator's key files) and accepts only the host key `host_key`.
    """

    host: pulumi.Input[str]
    user: str
    port: int
    private_key: pulumi.Input[str]
    host_key: Optional[pulumi.Input[str]] = None
    """The host's public key, "TYPE BASE64": a host that presents another key is refused."""
    key_file: str = "~/.ssh/id_ed25519"
    """Key file used by `argv` (tests and drills run the system ssh client)."""
    known_hosts: Optional[str] = None
    """known_hosts file of `argv` (None: the user's); host keys are accepted on first use."""

    @property
    def uri(self) -> pulumi.Output[str]:
        return pulumi.Output.concat("ssh://", self.user, "@", self.host, ":", str(self.port))

    def _options(self, host_keys: Sequence[str]) -> list[str]:
        return ["-p", str(self.port), "-o", "BatchMode=yes", *host_keys,
                "-o", "ConnectTimeout=10", "-o", "ConnectionAttempts=3"]

    def argv(self, argv: Sequence[str]) -> list[str]:
        if not isinstance(self.host, str):
            raise TypeError("Ssh.argv needs the host's address as a string; a host known only at deploy "
                            "time (an Output) is reached through command() or pipe()")
        known = ["-o", f"UserKnownHostsFile={self.known_hosts}"] if self.known_hosts else []
        return ["ssh", "-i", self.key_file, *self._options([*known, "-o", "StrictHostKeyChecking=accept-new"]),
                f"{self.user}@{self.host}", shlex.join(argv)]

    def pipe_line(self, host: str, producer: str, argv: Sequence[str]) -> str:
        """The shell line of `pipe` for a known host; key and host key come from the environment.

        The system ssh client needs the private key and the host key as files: the secret goes through
        the environment ($PHOENIX_SSH_KEY, never the command line) into a private temporary directory
        that lives as long as the command, beside a known_hosts file holding only $PHOENIX_SSH_HOST_KEY.
        No ssh config, agent or other identity of the operator is used.
        """
        options = self._options(["-F", "none", "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
                                 "-o", "CheckHostIP=no", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                                 "-o", "LogLevel=ERROR"])
        known_as = host if self.port == 22 else f"[{host}]:{self.port}"  # how known_hosts names it
        return ('umask 077 && ssh_dir=$(mktemp -d) && trap \'rm -rf "$ssh_dir"\' EXIT && '
                'printf \'%s\\n\' "$PHOENIX_SSH_KEY" > "$ssh_dir/key" && '
                f'printf \'%s %s\\n\' {shlex.quote(known_as)} "$PHOENIX_SSH_HOST_KEY" > "$ssh_dir/known_hosts" && '
                f'{producer} | ssh -i "$ssh_dir/key" -o UserKnownHostsFile="$ssh_dir/known_hosts" '
                f'{shlex.join([*options, f"{self.user}@{host}", shlex.join(argv)])}')

    def pipe(self, name, producer, argv, *, triggers=None, opts=None):
        if self.host_key is None:
            raise ValueError(f"{name}: an SSH pipe needs the host's key (Ssh.host_key): host keys are always verified")
        return local.Command(name, create=pulumi.Output.from_input(self.host).apply(
                                 lambda host: self.pipe_line(host, producer, argv)),
                             environment={"PHOENIX_SSH_KEY": pulumi.Output.secret(self.private_key),
                                          "PHOENIX_SSH_HOST_KEY": self.host_key},
                             triggers=triggers, opts=opts)

    def command(self, name, argv, *, stdin=None, delete=None, triggers=None, secret_stdout=False, opts=None):
        return remote.Command(
            name,
            connection=remote.ConnectionArgs(
                host=self.host, user=self.user, port=self.port, private_key=self.private_key,
                # The toolchain's command provider uses $SSH_AUTH_SOCK only when no key is given.
                host_key=self.host_key,
                # Fail fast on an unreachable host: 3 dials of 10 s, not the default 10 of 15 s.
                dial_error_limit=3, per_dial_timeout=10),
            create=_shell(list, argv),
            delete=_shell(list, delete),
            stdin=stdin,
            triggers=triggers,
            logging=remote.Logging.STDERR if secret_stdout else None,
            opts=_command_opts(opts, secret_stdout),
        )


@dataclass(frozen=True)
class EngineTls:
    """What a Docker provider needs to reach an engine over mutual TLS (PEM texts)."""

    ca: pulumi.Input[str]
    """The CA that signed the engine's certificate (and the client's)."""
    cert: pulumi.Input[str]
    key: pulumi.Input[str]
    """The client's private key: a secret."""


@dataclass(frozen=True)
class Port:
    """A port an orchestrator uses on its nodes: cloud firewalls open it, the config keeps it free."""

    protocol: str
    """`tcp` or `udp`."""
    first: int
    last: int = 0
    """The end of a range (2379-2380); 0 for a single port."""
    between: str = "nodes"
    """Who connects to it: `nodes` (every node), `servers` (managers among themselves) or `local` (a
    process on the node itself: never opened)."""
    admins: bool = False
    """Also reached from the admins' networks, where the Pulumi host is (an API server)."""
    purpose: str = ""

    @property
    def spec(self) -> str:
        """`2377` or `2379-2380`, as firewalls write ports."""
        return f"{self.first}-{self.last}" if self.last else str(self.first)

    @property
    def numbers(self) -> range:
        return range(self.first, (self.last or self.first) + 1)


class MachineNeeds(Protocol):
    """What an orchestrator needs from machines (SSH hosts, VMs); every orchestrator provides it.

    Substrates read it without knowing which orchestrator it is: the node layer does not import
    components.orchestrators.
    """

    name: str
    ports: Sequence[Port]
    host_prerequisites: Sequence[str]
    """What scripts/prepare.sh installs on a host before the bootstrap (`docker`), or nothing."""
    prepare_input: str
    """What scripts/prepare.sh reads on stdin for those prerequisites (kubeadm: containerd's configuration), or ""."""


@dataclass(frozen=True)
class Node:
    """One machine of the cluster, whatever it is made of."""

    name: str
    role: str
    """`manager` (Swarm manager / k3s server) or `worker` (Swarm worker / k3s agent)."""
    address: pulumi.Input[str]
    """The address other nodes reach this node at."""
    connection: Connection
    docker_host: Optional[pulumi.Input[str]]
    """How the Pulumi Docker provider reaches this node's engine (a unix:// socket, or tcp:// with
    `docker_tls`); None: it does not."""
    public_address: pulumi.Input[str]
    """Where users reach ports this node publishes (127.0.0.1 for local containers)."""
    docker_tls: Optional[EngineTls] = None
    """Client credentials for a tcp:// `docker_host` (mutual TLS)."""
    ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """Resources to depend on before running commands on the node."""
    replace_key: Optional[pulumi.Input[str]] = None
    """Changes when the machine is replaced (a new container id): bootstrap steps re-run then."""

    def run(self, name: str, argv: pulumi.Input[Sequence[str]], *, parent: pulumi.Resource, stdin=None, delete=None,
            triggers: Sequence[pulumi.Input] = (), depends_on: Sequence[pulumi.Resource] = (),
            secret_stdout: bool = False, delete_before_replace: bool = False) -> pulumi.CustomResource:
        """Run `argv` on this node as a child of `parent`, after the node is ready.

        `delete_before_replace`: on a replaced machine, `delete` runs (on the old one) before `argv`
        runs on the new one (an uninstall must not follow the new install)."""
        keys = [self.replace_key] if self.replace_key is not None else []
        return self.connection.command(
            name, argv, stdin=stdin, delete=delete, triggers=[*keys, *triggers],
            secret_stdout=secret_stdout,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[*self.ready, *depends_on],
                                        delete_before_replace=delete_before_replace))


def script_argv(script: str, program: str, *args: str) -> list[str]:
    """Run a shell script's text with `sh -c` so that it needs no file on the node."""
    return ["sh", "-c", script, program, *args]

"""Pulumi mocks for the unit tests: no engine, no Docker, no cluster.

Mocks answer per resource type (wire names, camelCase) with the outputs a provider would compute,
and record every resource so that tests can look at the graph. Components are built inside each
test (see the `mocks` fixture), never at import time.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Callable

import pulumi
import pytest

from components.config import ClusterConfig, parse

WORKER_TOKEN = "SWMTKN-1-worker-secret"
MANAGER_TOKEN = "SWMTKN-1-manager-secret"
K3S_TOKEN = "k3s-cluster-token-secret"
KUBEADM_TOKEN = "abcdef.0123456789secret"
KUBEADM_CERT_KEY = "c3" * 32
KUBEADM_CA_HASH = "sha256:" + "a" * 64
# What `k3s.sh kubeconfig` prints: k3s's admin kubeconfig, pointed at the node itself.
K3S_KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZLVNFQ1JFVA==
"""


def _script_action(command: str) -> tuple[str, list[str]]:
    """For `... sh -c SCRIPT PROGRAM ACTION ARGS [; }]`: (ACTION, ARGS); ("", []) for other commands."""
    program, rest = _script_call(command)
    return (rest[0], rest[1:]) if rest else ("", [])


def exec_target(command: str) -> str:
    """The container a `docker exec [OPTIONS] CONTAINER ...` line runs in."""
    argv = shlex.split(command)
    i = argv.index("exec") + 1
    while argv[i].startswith("-"):
        i += 2 if argv[i] in ("-e", "--env", "-u", "--user", "-w", "--workdir") else 1
    return argv[i]


def _script_call(command: str) -> tuple[str, list[str]]:
    """For `... -c SCRIPT PROGRAM ARGS [; }]`: (PROGRAM, ARGS); ("", []) for other commands."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        argv = list(lexer)
    except ValueError:
        return "", []
    if "-c" in argv and len(argv) > argv.index("-c") + 2:
        rest = argv[argv.index("-c") + 2:]
        # The argv ends where the shell line goes on (`;;` of a guarded delete, `&&`, `|`).
        ends = [i for i, token in enumerate(rest) if token in (";", ";;", "}", "&&", "||", "|")]
        rest = rest[:ends[0]] if ends else rest
        if rest:
            return rest[0], rest[1:]
    return "", []


# An SSH host key as scripts/hostkey.sh prints it, and the engine certificates' JSON (fake PEMs).
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheMockHost0000000000000000000"
ENGINE_CLIENT_KEY = "-----BEGIN PRIVATE KEY-----\nengine-client-key-secret\n-----END PRIVATE KEY-----\n"


def _pem(kind: str, body: str) -> str:
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def _engine_certs(args: list[str]) -> str:
    if args[:1] == ["ca"]:
        return json.dumps({"ca": _pem("CERTIFICATE", "engine-ca"), "caKey": _pem("PRIVATE KEY", "engine-ca-key-secret"),
                           "cert": _pem("CERTIFICATE", "engine-client"), "key": ENGINE_CLIENT_KEY})
    return json.dumps({"cert": _pem("CERTIFICATE", f"engine-server-{args[1]}"),
                       "key": _pem("PRIVATE KEY", f"engine-server-key-secret-{args[1]}")})


APP_DIGEST = "sha256:" + "d" * 64
APP_IMAGE_ID = "sha256:" + "e" * 64
"""What `swarm.sh load` prints on a host: the loaded image's ID."""


def _command_stdout(args: pulumi.runtime.MockResourceArgs) -> dict:
    program, call = _script_call(args.inputs.get("create", ""))
    if program == "hostkey":
        return {"stdout": HOST_KEY, "stderr": ""}
    if program == "engine-certs":
        return {"stdout": _engine_certs(call), "stderr": ""}
    if "string.ascii_lowercase" in args.inputs.get("create", ""):  # kubeadm's token and certificate key
        return {"stdout": f"{KUBEADM_TOKEN}\n{KUBEADM_CERT_KEY}", "stderr": ""}  # the provider trims stdout
    if "secrets.token_hex" in args.inputs.get("create", ""):  # the k3s cluster token
        return {"stdout": K3S_TOKEN + "\n", "stderr": ""}
    pushed = re.search(r"docker push -q (\S+):", args.inputs.get("create", ""))
    if pushed:  # the app image build: RepoDigests as `docker image inspect` prints them
        return {"stdout": f"other/repo@sha256:{'0' * 64}\n{pushed.group(1)}@{APP_DIGEST}", "stderr": ""}
    create = args.inputs.get("create", "")
    if "docker save " in create and " | " in create:  # an image archive piped to a node: its last word
        create = shlex.split(create.split(" | ", 1)[1])[-1]
    action, rest = _script_action(create)
    stdout = {
        "load": APP_IMAGE_ID,
        "import": rest[0] if rest else "",
        "has-image": rest[0] if rest else "",
        "init": "node-" + (rest[0] if rest else "x"),
        "join": "node-" + (rest[0] if rest else "x"),
        "tokens": json.dumps({"worker": WORKER_TOKEN, "manager": MANAGER_TOKEN}),
        "label": rest[0] if rest else "",
        "kubeconfig": K3S_KUBECONFIG,
        "wait-node": rest[0] if rest else "",
        "ca-hash": KUBEADM_CA_HASH + "\n",
    }.get(action, "")
    return {"stdout": stdout, "stderr": ""}


OUTPUTS: dict[str, Callable[[pulumi.runtime.MockResourceArgs], dict]] = {
    "command:local:Command": _command_stdout,
    "command:remote:Command": _command_stdout,
    "docker:index/remoteImage:RemoteImage": lambda a: {"imageId": f"sha256:{a.inputs['name']}"},
    "docker:index/container:Container": lambda a: {"networkData": []},
    # Hetzner Cloud: a server's public addresses (one stable TEST-NET-3 address per server name).
    "hcloud:index/server:Server": lambda a: {"ipv4Address": server_ipv4(a.name), "ipv6Address": "2001:db8::1"},
}
SERVER_IPS: dict[str, str] = {}


def server_ipv4(name: str) -> str:
    """The mock public IPv4 of the hcloud server `name` (documentation range 203.0.113.0/24)."""
    return SERVER_IPS.setdefault(name, f"203.0.113.{10 + len(SERVER_IPS) % 240}")


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.delete_first: set[str] = set()
        """Names of resources registered with delete_before_replace."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outputs = dict(args.inputs)
        outputs.update(OUTPUTS.get(args.typ, lambda a: {})(args))
        # Hetzner Cloud ids are integers (network_id, firewall_ids take them as int).
        rid = str(1000 + len(self.resources)) if args.typ.startswith("hcloud:") else f"{args.name}-id"
        return [rid, outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of(self, typ: str) -> dict[str, dict]:
        """Inputs of every recorded resource of one type, by resource name."""
        return {r.name: r.inputs for r in self.resources if r.typ == typ}


class _Monitor(pulumi.runtime.mocks.MockMonitor):
    """Also records the resource options that never reach `Mocks.new_resource`."""

    def RegisterResource(self, request):
        if request.deleteBeforeReplace:
            self.mocks.delete_first.add(request.name)
        return super().RegisterResource(request)


@pytest.fixture
def mocks() -> Mocks:
    m = Mocks()
    pulumi.runtime.set_mocks(m, project="phoenix", stack="test", preview=False, monitor=_Monitor(m))
    return m


@pytest.fixture
def config() -> Callable[..., ClusterConfig]:
    """Build a validated ClusterConfig from keyword overrides (keys as in the stack file)."""
    def make(stack: str = "test", **raw) -> ClusterConfig:
        return parse(raw, stack)
    return make


def refused(raw: dict, key: str, hint: str) -> str:
    """The config error for `raw` (stack keys without the prefix); fails unless it has a line for `key`
    naming what would be valid (`hint`)."""
    from components.config import ConfigError
    with pytest.raises(ConfigError) as err:
        parse(raw, "dev")
    message = str(err.value)
    assert re.search(rf"phoenix:{re.escape(key)} = .* is invalid: .*{re.escape(hint)}", message), message
    return message


def secret_value(value):
    """The plain value of a secret resource input as the mocks receive it; fails if it is not secret."""
    assert isinstance(value, dict) and value.get(pulumi.runtime.rpc._special_sig_key) == \
        pulumi.runtime.rpc._special_secret_sig, f"expected a secret, got {value!r}"
    return value["value"]


def fake_toolchain(root: Path) -> str:
    """A fake Kubernetes toolchain: its files are symlinks into versioned pieces, as the cache's are."""
    for path in ("bin/kubeadm", "bin/kubelet", "bin/kubectl", "images/pause-3.10.1.tar", "images/etcd.tar",
                 "images/kube-apiserver.tar", "images/kube-controller-manager.tar", "images/kube-scheduler.tar",
                 "images/kube-proxy.tar", "images/flannel.tar"):
        piece = root / "pieces" / "v1" / path
        piece.parent.mkdir(parents=True, exist_ok=True)
        piece.write_text(path)
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).symlink_to(piece)
    return str(root)


def settled(*resources: pulumi.Resource) -> pulumi.Output:
    """An Output that resolves once the given resources (and so their inputs) are registered."""
    return pulumi.Output.all(*[r.urn for r in resources])


@pytest.fixture(autouse=True)
def own_passphrase(monkeypatch):
    """Unit tests do not depend on the caller's passphrase: `make test` sources the built-in one, which
    SSH and cloud stacks refuse (tests of that refusal pass their environment explicitly)."""
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "unit-test-passphrase")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)

"""The stack's configuration, read once into typed, validated objects.

Defaults and types come from the `config:` block of Pulumi.yaml (one place for them). Every bad value
is refused here, before any resource exists: `parse` collects all problems and raises one
`ConfigError` whose lines each name the key, the value and what would be valid.
"""
from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import yaml

from components import orchestrators

if TYPE_CHECKING:
    from components.orchestrators.orchestrator import Orchestrator

PROJECT = "phoenix"
PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

SUBSTRATES = ("docker", "ssh", "cloud")
ENDPOINT_MODES = ("vip", "dnsrr")
SERVICES = ("web", "api")
ROLES = ("manager", "worker")
# Hetzner Cloud locations and the network zone of each (a subnet must be in its servers' zone).
HETZNER_NETWORK_ZONES = {"fsn1": "eu-central", "nbg1": "eu-central", "hel1": "eu-central",
                         "ash": "us-east", "hil": "us-west", "sin": "ap-southeast"}
SSH_PORT = 22
# Structured or secret keys that Pulumi.yaml cannot declare (README, "Stacks as environments").
UNDECLARED_KEYS = ("hosts", "cloud", "sshPrivateKey")
# The Linux capabilities (include/uapi/linux/capability.h, 0 to 40), without the CAP_ prefix.
CAPABILITIES = frozenset("""
    CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
    NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT
    SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
    AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ
    PERFMON BPF CHECKPOINT_RESTORE""".split())
# Keys that only some substrates read: set for another they would be silently ignored, which is how a
# typo or a stale stack file hides (the orchestrators declare theirs: Orchestrator.config_keys).
SUBSTRATE_KEYS = {
    "docker": ("nodeImage", "privileged", "capDrop", "nodeMilliCpus", "nodeMemoryMb", "subnet", "socketDir",
               "registryImage", "registryPort", "bindAddress"),
    "ssh": ("hosts", "sshUser", "sshPrivateKey"),
    "cloud": ("cloud", "sshPublicKey", "sshPrivateKey"),
}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) AAAA[A-Za-z0-9+/]+={0,3}$")


class ConfigError(ValueError):
    """Raised with one line per bad key; nothing has been created when it is raised."""


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; tag is '' when absent (a registry port is no tag)."""
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, ""
    return repo, tag


def declared() -> dict[str, dict[str, Any]]:
    """The config keys declared in Pulumi.yaml, without the project prefix."""
    raw = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in raw.items()}


@dataclass(frozen=True)
class SshHost:
    """An existing machine reached over SSH (substrate `ssh`)."""

    name: str
    address: str
    role: str
    port: int = 22
    user: str = "root"
    host_key: str = ""
    """The host's SSH public key, "TYPE BASE64"; empty: recorded at first contact."""


@dataclass(frozen=True)
class CloudConfig:
    """Hetzner Cloud VMs (substrate `cloud`)."""

    location: str = "fsn1"
    server_type: str = "cx22"
    image: str = "debian-12"
    network_cidr: str = "10.0.0.0/16"
    admin_cidrs: tuple[str, ...] = ()
    """Sources allowed to SSH (and the k3s API); no default: the operator names them."""


@dataclass(frozen=True)
class NodesConfig:
    managers: int
    workers: int
    image: str
    privileged: bool
    cap_drop: tuple[str, ...]
    milli_cpus: int
    memory_mb: int
    subnet: str
    socket_dir: str
    registry_image: str
    registry_port: int
    ssh_user: str
    hosts: tuple[SshHost, ...] = ()
    cloud: CloudConfig | None = None
    ssh_public_key: str = ""
    """OpenSSH public key of the VMs (substrate cloud)."""

    @property
    def count(self) -> int:
        return self.managers + self.workers


@dataclass(frozen=True)
class AppConfig:
    replicas: Mapping[str, int]
    version: str
    base_image: str
    published_port: int
    bind_address: str
    endpoint_mode: str
    autoscale_max: int
    min_available: int
    phoenix: bool
    phoenix_interval: int
    phoenix_services: tuple[str, ...]


@dataclass(frozen=True)
class K3sConfig:
    version: str
    airgap_dir: str


@dataclass(frozen=True)
class KubeadmConfig:
    api_port: int
    """Host port where container nodes publish the API server."""
    toolchain_dir: str
    """Hosts and VMs: the Kubernetes toolchain on the Pulumi host (binaries and images copied onto them)."""


@dataclass(frozen=True)
class ClusterConfig:
    stack: str
    orchestrator: str
    substrate: str
    nodes: NodesConfig
    app: AppConfig
    k3s: K3sConfig
    kubeadm: KubeadmConfig
    labels: Mapping[str, str] = field(default_factory=dict)


class _Reader:
    """Reads raw values (strings from Pulumi, or already-typed values in tests) by declared type."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.decl = declared()
        self.errors: list[str] = []

    def bad(self, key: str, value: Any, valid: str) -> None:
        self.errors.append(f"{PROJECT}:{key} = {value!r} is invalid: {valid}")

    def is_set(self, key: str) -> bool:
        """Set to something else than its default (the engine passes declared defaults as values)."""
        if key not in self.raw:
            return False
        if key not in self.decl:
            return True
        errors = len(self.errors)
        value = self.get(key)
        del self.errors[errors:]  # a bad value is reported by the key's own check
        return value != self.decl[key].get("default")

    def get(self, key: str) -> Any:
        decl = self.decl[key]
        value = self.raw.get(key)
        if value is None or value == "" and decl["type"] != "string":
            return decl.get("default")
        kind = decl["type"]
        try:
            if kind == "integer":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                return int(value)
            if kind == "boolean":
                if isinstance(value, bool):
                    return value
                if str(value).lower() in ("true", "false"):
                    return str(value).lower() == "true"
                raise ValueError
            if kind == "array":
                items = json.loads(value) if isinstance(value, str) else value
                if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                    raise ValueError
                return items
            return str(value)
        except ValueError:
            self.bad(key, value, f"expected {'a list of strings' if kind == 'array' else 'an ' + kind if kind == 'integer' else 'a ' + kind}")
            return decl.get("default")

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.get(key)
        if value not in options:
            self.bad(key, value, f"choose one of {', '.join(options)}")
            return options[0]
        return value

    def int_range(self, key: str, low: int, high: int | None = None, hint: str = "") -> int:
        value = self.get(key)
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.bad(key, value, f"expected {bounds}{hint}")
        return value

    def structured(self, key: str) -> Any:
        value = self.raw.get(key)
        if isinstance(value, str) and value:
            try:
                return json.loads(value)
            except json.JSONDecodeError as err:
                self.bad(key, value, f"expected structured YAML/JSON ({err.msg})")
                return None
        return value


def _port(r: _Reader, key: str, reserved: set[int], orchestrator: str) -> int:
    value = r.int_range(key, 1, 65535)
    if value in reserved:
        r.bad(key, value, f"port is used by the orchestrator {orchestrator} ({', '.join(map(str, sorted(reserved)))}); "
              "pick another")
    elif value == SSH_PORT:
        r.bad(key, value, "port 22 is SSH's on the hosts; pick another")
    return value


def _unknown_keys(r: _Reader, secret: frozenset[str]) -> None:
    """Refuse keys the program does not read, naming the closest known key (a typo is the usual cause)."""
    known = sorted({*r.decl, *UNDECLARED_KEYS})
    for key in sorted(set(r.raw) - set(known)):
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {PROJECT}:{close[0]}?" if close else "known keys are listed in Pulumi.yaml under config"
        value = "(secret)" if key in secret else r.raw[key]
        r.bad(key, value, f"unknown key; {hint} (`pulumi config rm {PROJECT}:{key}` removes it)")


def _meaningless_keys(r: _Reader, chosen: "Orchestrator", substrate: str) -> None:
    """Refuse keys that the chosen orchestrator or substrate would ignore.

    Refused rather than warned about: a warning scrolls by in a long `pulumi up`, and a stack file
    that sets a key which changes nothing misleads whoever reads it next.
    """
    owners = [("substrate", name, keys) for name, keys in SUBSTRATE_KEYS.items()] + \
        [("orchestrator", name, orchestrators.get(name).config_keys) for name in orchestrators.names()]
    chosen_axes = {"substrate": substrate, "orchestrator": chosen.name}
    for key in sorted({k for _, _, keys in owners for k in keys}):
        for axis in ("substrate", "orchestrator"):
            serves = [name for a, name, keys in owners if a == axis and key in keys]
            if serves and chosen_axes[axis] not in serves and r.is_set(key):
                value = "(secret)" if key == "sshPrivateKey" else r.raw[key]
                r.bad(key, value, f"means nothing for {axis} {chosen_axes[axis]} (only for {' or '.join(serves)}): "
                      f"`pulumi config rm {PROJECT}:{key}`, or choose another {PROJECT}:{axis}")


def _capabilities(r: _Reader) -> tuple[str, ...]:
    """Capability names checked against Linux's list; stored without the CAP_ prefix."""
    names = []
    for cap in r.get("capDrop"):
        name = cap.upper().removeprefix("CAP_")
        if name not in CAPABILITIES:
            close = difflib.get_close_matches(name, sorted(CAPABILITIES), n=1)
            r.bad("capDrop", cap, "not a Linux capability" + (f"; did you mean {close[0]}?" if close else
                  " (see capabilities(7), e.g. SYS_RESOURCE)"))
        names.append(name)
    return tuple(names)


def _orchestrator(r: _Reader) -> tuple["Orchestrator", bool]:
    """(the chosen orchestrator, True), or (the default one, False) after recording that there is none."""
    name = r.get("orchestrator")
    try:
        return orchestrators.get(name), True
    except orchestrators.UnknownOrchestrator:
        r.bad("orchestrator", name, f"choose one of {', '.join(orchestrators.names())}")
        return orchestrators.get(r.decl["orchestrator"]["default"]), False


def _hosts(r: _Reader, ssh_user: str) -> tuple[SshHost, ...]:
    raw = r.structured("hosts")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.bad("hosts", raw, "expected a list of {name, address, role, port?, user?, hostKey?}")
        return ()
    hosts, seen = [], set()
    for i, h in enumerate(raw):
        key = f"hosts[{i}]"
        if not isinstance(h, dict) or not {"name", "address", "role"} <= h.keys():
            r.bad(key, h, "each host needs name, address and role (manager or worker)")
            continue
        unknown = set(h) - {"name", "address", "role", "port", "user", "hostKey"}
        if unknown:
            r.bad(key, h, f"unknown fields {sorted(unknown)}; allowed: name, address, role, port, user, hostKey")
        host_key = " ".join(str(h.get("hostKey", "")).split()[:2])  # without the comment
        if host_key and not _HOST_KEY.match(host_key):
            r.bad(f"{key}.hostKey", h["hostKey"], "the host's public key as in /etc/ssh/ssh_host_ed25519_key.pub "
                  "(TYPE BASE64), or leave it out to record the key at first contact")
        if not _NAME.match(str(h["name"])) or h["name"] in seen:
            r.bad(f"{key}.name", h["name"], "a unique lowercase DNS label (a-z, 0-9, -)")
        seen.add(h["name"])
        if h["role"] not in ROLES:
            r.bad(f"{key}.role", h["role"], "manager or worker")
        port = h.get("port", 22)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            r.bad(f"{key}.port", port, "an integer between 1 and 65535")
            port = 22
        hosts.append(SshHost(str(h["name"]), str(h["address"]), str(h["role"]), port, str(h.get("user", ssh_user)),
                             host_key))
    return tuple(hosts)


def _cloud(r: _Reader) -> CloudConfig:
    raw = r.structured("cloud") or {}
    if not isinstance(raw, dict):
        r.bad("cloud", raw, "expected a map with location, serverType, image, networkCidr, adminCidrs")
        return CloudConfig()
    names = {"location": "location", "serverType": "server_type", "image": "image",
             "networkCidr": "network_cidr", "adminCidrs": "admin_cidrs"}
    unknown = set(raw) - names.keys()
    if unknown:
        r.bad("cloud", raw, f"unknown fields {sorted(unknown)}; allowed: {', '.join(names)}")
    values = {names[k]: v for k, v in raw.items() if k in names}
    if "admin_cidrs" in values:
        values["admin_cidrs"] = tuple(values["admin_cidrs"])
    cloud = CloudConfig(**values)
    if cloud.location not in HETZNER_NETWORK_ZONES:
        r.bad("cloud.location", cloud.location, "a Hetzner Cloud location: " + ", ".join(
            f"{loc} ({zone})" for loc, zone in HETZNER_NETWORK_ZONES.items()))
    for key, cidr in [("cloud.networkCidr", cloud.network_cidr)] + [("cloud.adminCidrs", c) for c in cloud.admin_cidrs]:
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            r.bad(key, cidr, "a CIDR such as 10.0.0.0/16")
            continue
        # SSH and the k3s API open to the whole Internet is never a default, nor accepted.
        if key == "cloud.adminCidrs" and network.prefixlen == 0:
            r.bad(key, cidr, "the addresses you administer from, such as 203.0.113.7/32: SSH and the k3s API "
                  "are not opened to the whole Internet")
    if not cloud.admin_cidrs:
        r.bad("cloud.adminCidrs", raw.get("adminCidrs"), "a list of the CIDRs you administer from (SSH, k3s API), "
              f"e.g. pulumi config set --path '{PROJECT}:cloud.adminCidrs[0]' 203.0.113.7/32")
    return cloud


def parse(raw: Mapping[str, Any], stack: str, secret: frozenset[str] | set[str] = frozenset()) -> ClusterConfig:
    """Validate raw config values (keys without the project prefix) into a ClusterConfig.

    `secret` names the keys whose values are secrets: messages never show them.
    """
    r = _Reader(raw)
    _unknown_keys(r, frozenset(secret))
    chosen, known = _orchestrator(r)
    orchestrator = chosen.name
    substrate = r.choice("substrate", SUBSTRATES)
    _meaningless_keys(r, chosen, substrate)
    managers = r.int_range("managers", 1, 7, " (an odd number: Raft/etcd need a majority)")
    if managers % 2 == 0:
        r.bad("managers", managers, "expected an odd number (1, 3, 5 or 7) so that a majority survives a failure "
              "(Swarm's Raft, k3s's embedded etcd)")
    workers = r.int_range("workers", 0, 50)

    image = r.get("nodeImage") or chosen.default_node_image
    privileged = r.get("privileged")
    registry_image, base_image = r.get("registryImage"), r.get("appBaseImage")
    cap_drop = _capabilities(r)
    if privileged and r.is_set("capDrop"):
        r.bad("capDrop", r.raw["capDrop"], f"applies only with {PROJECT}:privileged false (a privileged node has every capability)")
    memory = r.get("nodeMemoryMb")
    if memory and memory < 256:
        r.bad("nodeMemoryMb", memory, "0 (no limit) or at least 256: dockerd and k3s need room")
    milli = r.int_range("nodeMilliCpus", 0, 256_000)

    subnet = r.get("subnet")
    try:
        net = ipaddress.ip_network(subnet)
        if net.version != 4 or net.num_addresses < 256:
            r.bad("subnet", subnet, "an IPv4 network of /24 or larger (fixed node addresses go up to .200)")
        if workers > 100:
            r.bad("workers", workers, "at most 100 on container nodes")
    except ValueError:
        r.bad("subnet", subnet, "an IPv4 CIDR such as 172.28.0.0/24")
    socket_dir = r.get("socketDir")
    if not socket_dir.startswith("/"):
        r.bad("socketDir", socket_dir, "an absolute path")
    elif len(socket_dir) > 60:
        r.bad("socketDir", socket_dir, "at most 60 characters: unix socket paths are limited to 108 bytes")

    ssh_user = r.get("sshUser")
    hosts = _hosts(r, ssh_user) if substrate == "ssh" else ()
    if substrate == "ssh":
        if not hosts:
            r.bad("hosts", raw.get("hosts"), "substrate ssh needs phoenix:hosts, a list of {name, address, role}")
        roles = [h.role for h in hosts]
        managers, workers = roles.count("manager"), roles.count("worker")
        if hosts and managers % 2 == 0:
            r.bad("hosts", [h.name for h in hosts], "an odd number (1, 3, 5) of hosts with role manager")
    cloud = _cloud(r) if substrate == "cloud" else None
    ssh_public_key = r.get("sshPublicKey").strip()
    if substrate == "cloud" and not re.match(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$", ssh_public_key):
        r.bad("sshPublicKey", ssh_public_key, f"substrate cloud needs the OpenSSH public key of phoenix:sshPrivateKey: pulumi config set {PROJECT}:sshPublicKey \"$(cat ~/.ssh/id_ed25519.pub)\"")
    if substrate != "docker" and "sshPrivateKey" not in raw:
        r.bad("sshPrivateKey", None, f"substrate {substrate} needs it: pulumi config set --secret {PROJECT}:sshPrivateKey < ~/.ssh/id_ed25519")

    replicas = {s: r.int_range(f"{s}Replicas", 1, 100) for s in SERVICES}
    published = _port(r, "publishedPort", chosen.reserved_ports(), orchestrator)
    registry_port = _port(r, "registryPort", chosen.reserved_ports(), orchestrator)
    if registry_port == published:
        r.bad("registryPort", registry_port, "must differ from phoenix:publishedPort")
    for h in hosts:
        if h.port == published:
            r.bad("publishedPort", published, f"host {h.name} listens for SSH on {h.port}; pick another port")
    bind = r.get("bindAddress")
    try:
        ipaddress.IPv4Address(bind)
    except ValueError:
        r.bad("bindAddress", bind, "an IPv4 address such as 127.0.0.1 (local only) or 0.0.0.0 (all interfaces)")
    endpoint_mode = r.choice("endpointMode", ENDPOINT_MODES)

    autoscale_max = r.int_range("autoscaleMax", 1, 100)
    for s, n in replicas.items():
        if autoscale_max < n:
            r.bad("autoscaleMax", autoscale_max, f"at least phoenix:{s}Replicas ({n}): the autoscaler's minimum is the replica count")
    min_available = r.int_range("minAvailable", 0)
    for s, n in replicas.items():
        # A single replica is checked by orchestrators with disruption budgets (Orchestrator.validate).
        if min_available >= n > 1:
            r.bad("minAvailable", min_available, f"below phoenix:{s}Replicas ({n}), or no pod could ever be evicted for a drain")

    phoenix_interval = r.int_range("phoenixInterval", 10, 86_400)
    phoenix_services = r.get("phoenixServices")
    for s in phoenix_services:
        if s not in SERVICES:
            r.bad("phoenixServices", phoenix_services, f"services among {', '.join(SERVICES)}")
    phoenix = r.get("phoenix")
    if phoenix:
        for s in phoenix_services:
            if s in replicas and replicas[s] < 2:
                r.bad(f"{s}Replicas", replicas[s], "at least 2 while phoenix mode replaces its containers, or the service goes dark")

    version = r.get("appVersion")
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", version):
        r.bad("appVersion", version, "letters, digits, '.', '_' or '-' (it becomes an image label and env value)")
    k3s_version, airgap_dir = r.get("k3sVersion"), r.get("k3sAirgapDir")
    if not _NAME.match(stack.lower().replace("_", "-").replace(".", "-")[:32]):
        r.bad("(stack name)", stack, "a stack name made of letters, digits and '-'")

    nodes = NodesConfig(
        managers=managers, workers=workers, image=image, privileged=privileged,
        cap_drop=tuple(cap_drop), milli_cpus=milli, memory_mb=memory, subnet=subnet,
        socket_dir=socket_dir, registry_image=registry_image, registry_port=registry_port,
        ssh_user=ssh_user, hosts=hosts, cloud=cloud, ssh_public_key=ssh_public_key)
    app = AppConfig(
        replicas=replicas, version=version, base_image=base_image, published_port=published,
        bind_address=bind, endpoint_mode=endpoint_mode, autoscale_max=autoscale_max,
        min_available=min_available, phoenix=phoenix, phoenix_interval=phoenix_interval,
        phoenix_services=tuple(phoenix_services))
    cfg = ClusterConfig(
        stack=stack, orchestrator=orchestrator, substrate=substrate, nodes=nodes, app=app,
        k3s=K3sConfig(version=k3s_version, airgap_dir=airgap_dir),
        kubeadm=KubeadmConfig(api_port=r.int_range("apiPort", 1, 65535),
                              toolchain_dir=r.get("kubeadmToolchainDir")),
        labels={"io.phoenix.project": PROJECT, "io.phoenix.stack": stack})
    if known:  # the default's own checks would only add noise to an unknown name
        cfg = chosen.validate(cfg, r.bad)
    if r.errors:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(r.errors))
    return cfg


# scripts/pulumi-env.sh's passphrase when none is set: public, so it protects nothing.
BUILTIN_PASSPHRASE = "local-dev-only"


def passphrase_problem(substrate: str, stack: str, environ: Mapping[str, str]) -> str | None:
    """Why the stack must not run with the built-in passphrase, or None.

    Substrates ssh and cloud hold real secrets (an SSH private key, a cloud token) in the stack file:
    encrypted with a passphrase everyone can read, they are as good as plaintext in a commit.
    """
    if substrate == "docker":
        return None
    stack_file = PROJECT_FILE.parent / "stacks" / f"Pulumi.{stack}.yaml"
    provider = (yaml.safe_load(stack_file.read_text()) or {}).get("secretsprovider", "") if stack_file.is_file() else ""
    if provider and not provider.startswith("passphrase"):
        return None  # a KMS or the Pulumi service: no passphrase involved
    passphrase = environ.get("PULUMI_CONFIG_PASSPHRASE")
    if passphrase is None and environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        try:
            passphrase = Path(environ["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text().rstrip("\n")
        except OSError:
            return None  # Pulumi itself reports an unreadable passphrase file
    if passphrase != BUILTIN_PASSPHRASE:
        return None
    return (f"stack {stack} (substrate {substrate}) keeps real secrets ({PROJECT}:sshPrivateKey"
            f"{', hcloud:token' if substrate == 'cloud' else ''}) but its passphrase is {BUILTIN_PASSPHRASE!r}, the public "
            "default of scripts/pulumi-env.sh. Choose your own: export PULUMI_CONFIG_PASSPHRASE=<passphrase> (or "
            "PULUMI_CONFIG_PASSPHRASE_FILE=<file>) before sourcing scripts/pulumi-env.sh. Secrets already set "
            f"with the default: re-encrypt them with `PULUMI_CONFIG_PASSPHRASE={BUILTIN_PASSPHRASE} pulumi stack "
            "change-secrets-provider passphrase` (it asks for the new one), or move to a KMS with "
            "`pulumi stack change-secrets-provider awskms://...` (or gcpkms, azurekeyvault, hashivault)")


def stack_config() -> tuple[dict[str, Any], frozenset[str]]:
    """Every `phoenix:*` value of the current stack (keys without the prefix) and the secret ones.

    `pulumi.Config` reads only the keys it is asked for, so a typo would never be seen: the whole map
    comes from what the language host hands the program (PULUMI_CONFIG), or from the SDK's own
    settings when they were set in-process (tests).
    """
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = {*runtime_config.get_config_secret_keys_env(), *runtime_config._SECRET_KEYS.get()}
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}
    return raw, frozenset(k[len(prefix):] for k in secret if k.startswith(prefix))


def load() -> ClusterConfig:
    """Read the current stack's config and validate it; a bad config ends the program with one message.

    `pulumi.RunError` makes the engine print the message alone, without a Python traceback, before any
    resource is registered.
    """
    import pulumi

    raw, secret = stack_config()
    # Presence only: the key itself is read later as a secret Output (ssh_private_key()).
    if "sshPrivateKey" in raw:
        raw["sshPrivateKey"] = "(secret)"
    try:
        cfg = parse(raw, pulumi.get_stack(), secret)
        problem = passphrase_problem(cfg.substrate, cfg.stack, os.environ)
        if problem:
            raise ConfigError(problem)
        return cfg
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None


def ssh_private_key():
    """The SSH private key as a secret Output (substrates ssh and cloud)."""
    import pulumi

    return pulumi.Config(PROJECT).require_secret("sshPrivateKey")

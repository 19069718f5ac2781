"""k3s (lightweight Kubernetes) on any node set.

Roles: nodes with role `manager` are k3s servers, `worker` nodes are agents. One server keeps its
state in SQLite; an odd number of servers runs embedded etcd: the first starts it (`--cluster-init`),
the others join it (`--server https://<first>:6443`). Agents join with the same URL. Everybody
proves membership with the cluster token, a random secret made once and kept in the stack's state.

Two ways k3s gets onto a node:
- container nodes (substrate docker) run the official `rancher/k3s` image, whose entrypoint is the
  k3s binary: the container's command is `server ...` or `agent ...` (see `container_command`), as in
  the k3s project's own docker-compose example. Token, node password and the registry mirror are
  files written into the container when it is created (NodeRuntime.files); nothing is installed.
- hosts and VMs (substrates ssh, cloud) get k3s from the official install script (a systemd/openrc
  service), downloaded, or from `phoenix:k3sAirgapDir` (binary, images tarball, install script).

All steps on nodes are actions of scripts/k3s.sh, run through each node's Connection (`docker exec` or
SSH), like the Swarm bootstrap. The first server's admin kubeconfig is read once it answers,
rewritten to the address users reach, and is only ever a secret; everything above the bootstrap
(provider, app, phoenix CronJob) is shared with the other Kubernetes orchestrators (kubernetes.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from pathlib import Path
from typing import NotRequired, Optional, Sequence, TypedDict

import pulumi
import yaml
from pulumi_command import local, remote

from components.apps.app_image import ImageLoader
from components.apps.spec import ServiceSpec
from components.config import PROJECT, ClusterConfig, ConfigError, split_image
from components.nodes.docker_nodes import NodeContext, NodeRuntime
from components.nodes.node import Node, Port, Ssh, script_argv
from components.orchestrators import kubernetes
from components.orchestrators.kubernetes import secret_once, user_kubeconfig
from components.orchestrators.orchestrator import Complaint, Deployment, Orchestrator

SCRIPT = kubernetes.bootstrap_script(Path(__file__).parent / "scripts" / "k3s.sh")

API_PORT = 6443
INGRESS_PORT = 80
"""Traefik's `web` entrypoint (bundled with k3s, exposed on every node by the service load balancer)."""
DATA_DIR = "/var/lib/rancher/k3s"
TOKEN_FILE = "/etc/rancher/k3s/phoenix-token"
REGISTRIES_FILE = "/etc/rancher/k3s/registries.yaml"
NODE_PASSWORD_FILE = "/etc/rancher/node/password"
TRAEFIK_CONFIG_FILE = "/var/lib/rancher/k3s/server/manifests/phoenix-traefik-config.yaml"
AIRGAP_STAGE = "/var/tmp/phoenix-k3s-airgap"
"""Where air-gap files are copied on hosts before the install script puts them in place."""
TOKEN_COMMAND = "python3 -c 'import secrets; print(secrets.token_hex(32))'"
ROLES = {"manager": "server", "worker": "agent"}
VERSION = re.compile(r"^v1\.\d+\.\d+\+k3s\d+$")


def k3s_argv(*args: str) -> list[str]:
    """argv that runs one action of the k3s bootstrap script on a node."""
    return script_argv(SCRIPT, "k3s", *args)


LOADER = ImageLoader(
    load=lambda name: k3s_argv("import", name),
    check=lambda ref: k3s_argv("has-image", ref),
    remove=lambda ref: k3s_argv("remove-image", ref),
)
"""Without a registry (hosts): the archive into k3s's containerd (and its images directory, imported
on every start); pods use it with imagePullPolicy Never (kubernetes.deploy), so no node pulls it."""


def server_url(address: str) -> str:
    return f"https://{address}:{API_PORT}"


def image_tag(version: str) -> str:
    """The rancher/k3s image tag of a k3s release (image tags cannot hold '+')."""
    return version.replace("+", "-")


def airgap_problems(directory: str) -> list[str]:
    """What a k3s air-gap directory lacks: the k3s binary, install.sh and the images tarball."""
    root = Path(directory)
    if not root.is_dir():
        return ["not a directory on the Pulumi host"]
    problems = [f"{name} missing" for name in ("k3s", "install.sh") if not (root / name).is_file()]
    if not any(p.is_file() for p in root.glob("k3s-airgap-images-*")):
        problems.append("no k3s-airgap-images-<arch>.tar(.zst|.gz)")
    return problems


def registries_yaml(registry: str) -> str:
    """containerd mirror for the stack's registry: plain http (it has no TLS), as k3s documents."""
    return f'mirrors:\n  "{registry}":\n    endpoint:\n      - "http://{registry}"\n'


def traefik_config(port: int) -> str:
    """HelmChartConfig for the bundled Traefik: its web entrypoint on `port` of every host."""
    values = yaml.safe_dump({"ports": {"web": {"exposedPort": port}}}, sort_keys=False)
    return yaml.safe_dump({
        "apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
        "metadata": {"name": "traefik", "namespace": "kube-system"},
        "spec": {"valuesContent": values}}, sort_keys=False)


def node_password(token: str, name: str) -> str:
    """A node's registration password, derived from the token: stable when its container is recreated.

    k3s agents register with a password kept in /etc/rancher/node/password; the server refuses a
    later registration of the same node name with another one. That file is outside the data volume
    of a container node, so it is written at creation with the same value every time.
    """
    return hashlib.sha256(f"phoenix-node-password:{name}:{token}".encode()).hexdigest()[:32] + "\n"


def cluster_token(name: str, opts: Optional[pulumi.ResourceOptions] = None) -> pulumi.Output[str]:
    """A random cluster token made once on the Pulumi host and kept (secret) in the stack's state."""
    return secret_once(name, TOKEN_COMMAND, opts).apply(lambda out: out.strip())


def airgap_files(directory: str) -> list[Path]:
    """The files of an air-gap install (install.sh, k3s, images tarballs); config.parse checked them."""
    problems = airgap_problems(directory)
    if problems:
        raise ConfigError(f"{PROJECT}:k3sAirgapDir = {directory!r} is invalid: {'; '.join(problems)}")
    root = Path(directory)
    return [root / "install.sh", root / "k3s", *sorted(p for p in root.glob("k3s-airgap-images-*") if p.is_file())]


def container_command(ctx: NodeContext, public_address: str, ha: bool) -> list[str]:
    """The command of a rancher/k3s node container (its entrypoint is the k3s binary)."""
    role = ROLES[ctx.role]
    flags = [role, f"--node-name={ctx.name}", f"--node-ip={ctx.address}", f"--token-file={TOKEN_FILE}",
             f"--node-label=phoenix/role={role}",
             # As kind does for container nodes: kube-proxy leaves the host's conntrack table size alone.
             "--kube-proxy-arg=conntrack-max-per-core=0"]
    if role == "server":
        flags += [f"--tls-san={public_address}", "--write-kubeconfig-mode=0600"]
        if ctx.address == ctx.first_manager:
            if ha:
                flags.append("--cluster-init")
            return flags
    return flags + [f"--server={server_url(ctx.first_manager)}"]


def host_flags(node: Node, leader: Node, ha: bool) -> pulumi.Output[list[str]]:
    """k3s flags of a host or VM (the install script puts them in the service's command line)."""
    role = ROLES[node.role]

    def build(values: list[str]) -> list[str]:
        address, public, leader_address = values
        flags = [f"--node-name={node.name}", f"--node-ip={address}", f"--node-label=phoenix/role={role}"]
        if public and public != address:
            flags.append(f"--node-external-ip={public}")
        if role == "server":
            flags += [f"--tls-san={public or address}", "--write-kubeconfig-mode=0600"]
            if node is leader:
                return flags + (["--cluster-init"] if ha else [])
        return flags + [f"--server={server_url(leader_address)}"]

    return pulumi.Output.all(node.address, node.public_address, leader.address).apply(build)


class K3sArgs(TypedDict):
    nodes: Sequence[Node]
    """The cluster's nodes: role `manager` are servers (an odd number), `worker` are agents."""
    version: str
    """k3s release (v1.31.4+k3s1): installed on hosts; container nodes already run its image."""
    in_container: bool
    """True when k3s is each node container's command (rancher/k3s image): nothing is installed."""
    token: NotRequired[pulumi.Output[str]]
    """The cluster token (secret) for hosts; made here when absent. Containers got theirs at creation."""
    airgap_dir: NotRequired[str]
    """Hosts only: directory on the Pulumi host with k3s, install.sh and the images tarball."""
    registry: NotRequired[Optional[str]]
    """Hosts only: `host:port` of a plain-http registry the nodes pull app images through."""
    entry_port: NotRequired[int]
    """Hosts only: port of Traefik's web entrypoint on every node (containers publish it instead)."""


class K3s(pulumi.ComponentResource):
    """A k3s cluster on `nodes` (a kubernetes.KubernetesCluster: kubernetes.deploy puts the app on it)."""

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointed at `api_url`: a secret."""
    api_url: pulumi.Output[str]
    server_address: pulumi.Input[str]
    """The first server's address as the nodes reach it."""
    ready: list[pulumi.Resource]
    """The membership records: once they exist, the API answers and every node is Ready."""
    leader: Node
    """The first server."""

    def __init__(self, name: str, args: K3sArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:orchestrators:K3s", name, None, opts)
        nodes = list(args["nodes"])
        leader = kubernetes.first_server(nodes, "k3s")
        ha = sum(n.role == "manager" for n in nodes) > 1
        ordered = [leader] + [n for n in nodes if n is not leader]

        # Hosts: k3s installed by the install script (containers run it already). Every node joins after
        # the first server; each further server also after the previous one is a Ready member: etcd
        # takes one new member (a learner) at a time, so parallel joins would only race and retry.
        self.token: Optional[pulumi.Output[str]] = None
        hosts = not args["in_container"]
        if hosts:
            self.token = args["token"] if "token" in args else \
                cluster_token(f"{name}-token", pulumi.ResourceOptions(parent=self))
            airgap = airgap_files(args["airgap_dir"]) if args.get("airgap_dir") else []

        def install(node: Node, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
            if not hosts:
                return []
            return [self._run(
                node, f"{name}-install-{node.name}",
                host_flags(node, leader, ha).apply(lambda flags: k3s_argv(
                    "install", ROLES[node.role], args["version"], AIRGAP_STAGE if airgap else "", *flags)),
                stdin=self.token.apply(lambda t: t + "\n"), delete=k3s_argv("uninstall"),
                depends_on=[*self._prepare_host(name, node, airgap, args), *after],
                # A replaced machine: uninstall from the old one before installing on the new one.
                delete_before_replace=True)]

        leader_install = install(leader, [])
        ready = leader.run(f"{name}-ready", k3s_argv("wait-server"), parent=self, depends_on=leader_install)
        raw = leader.run(f"{name}-kubeconfig", k3s_argv("kubeconfig"), parent=self, depends_on=[ready],
                         secret_stdout=True)

        # Membership records, run on the first server: creating one waits until the node is Ready,
        # deleting one (the node left the config) drains the node and deletes it. They carry no
        # replacement triggers on purpose: a record replaced after its node came back would delete
        # the node again (node names are stable, unlike Swarm node IDs).
        members: list[pulumi.Resource] = []
        last_server: list[pulumi.Resource] = []
        for node in ordered:
            joined = leader_install if node is leader else install(node, [*leader_install, *(
                last_server if node.role == "manager" else [])])
            member = self._run(
                leader, f"{name}-member-{node.name}", k3s_argv("wait-node", node.name),
                delete=None if node is leader else k3s_argv("remove", node.name),
                depends_on=[ready, *node.ready, *joined], replace_key=False)
            members.append(member)
            if node.role == "manager":
                last_server = [member]

        self.server_address = leader.address
        self.api_url = pulumi.Output.concat("https://", leader.public_address, f":{API_PORT}")
        context = f"{PROJECT}-{pulumi.get_stack()}"
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(raw.stdout, self.api_url).apply(
            lambda v: user_kubeconfig(v[0], v[1], context)))
        self.ready = members
        self.leader = leader
        self.register_outputs({
            "serverAddress": self.server_address,
            "apiUrl": self.api_url,
            "kubeconfig": self.kubeconfig,
            "members": [n.name for n in ordered],
        })

    @staticmethod
    def script(*args: str) -> list[str]:
        return k3s_argv(*args)

    def _run(self, node: Node, name: str, argv, *, stdin=None, delete=None, depends_on=(),
             delete_before_replace: bool = False, replace_key: bool = True) -> pulumi.CustomResource:
        """Node.run, with the two options it does not offer (see the callers)."""
        triggers = [node.replace_key] if replace_key and node.replace_key is not None else None
        return node.connection.command(
            name, argv, stdin=stdin, delete=delete, triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*node.ready, *depends_on],
                                        delete_before_replace=delete_before_replace))

    def _prepare_host(self, name: str, node: Node, airgap: list[Path], args: K3sArgs) -> list[pulumi.Resource]:
        """Files a host needs before k3s starts: air-gap files, registry mirror, Traefik's port."""
        steps: list[pulumi.Resource] = []
        for path in airgap:
            steps.append(self._copy(node, f"{name}-airgap-{node.name}-{path.name}", path, f"{AIRGAP_STAGE}/{path.name}"))
        files = {}
        if args.get("registry"):
            files["registries"] = (REGISTRIES_FILE, "0600", registries_yaml(args["registry"]))
        if node.role == "manager" and args.get("entry_port"):
            files["traefik"] = (TRAEFIK_CONFIG_FILE, "0600", traefik_config(args["entry_port"]))
        for key, (path, mode, content) in files.items():
            steps.append(node.run(f"{name}-{key}-{node.name}", k3s_argv("put", path, mode), parent=self,
                                  stdin=content))
        return steps

    def _copy(self, node: Node, name: str, source: Path, target: str) -> pulumi.Resource:
        """Copy a file of the Pulumi host onto a node (air-gap files: too big for a command's stdin)."""
        opts = pulumi.ResourceOptions(parent=self, depends_on=list(node.ready))
        conn = node.connection
        if isinstance(conn, Ssh):
            return remote.CopyToRemote(
                name, connection=remote.ConnectionArgs(host=conn.host, user=conn.user, port=conn.port,
                                                       private_key=conn.private_key, dial_error_limit=3,
                                                       per_dial_timeout=10),
                source=pulumi.FileAsset(str(source)), remote_path=target,
                triggers=[node.replace_key] if node.replace_key is not None else None, opts=opts)
        # Any other connection: stream the file through its argv (docker exec -i, ...).
        sink = conn.argv(["sh", "-c", f"mkdir -p {shlex.quote(str(Path(target).parent))} && cat > {shlex.quote(target)}"])
        stat = source.stat()
        return local.Command(name, create=f"{shlex.join(sink)} < {shlex.quote(str(source))}",
                             triggers=[stat.st_size, stat.st_mtime_ns,
                                       *([node.replace_key] if node.replace_key is not None else [])], opts=opts)


class K3sOrchestrator(Orchestrator):
    """k3s: servers and agents from the rancher/k3s image (containers) or the install script (hosts)."""

    name = "k3s"
    default_node_image = "rancher/k3s"
    ports = (Port("tcp", API_PORT, admins=True, purpose="api"), Port("udp", 8472, purpose="flannel VXLAN"),
             Port("tcp", 10250, purpose="kubelet"), Port("tcp", 2379, 2380, between="servers", purpose="etcd"),
             Port("tcp", 6444, between="local", purpose="agent load balancer"))
    host_prerequisites = ()  # the install script brings everything
    image_loader = LOADER
    config_keys = ("autoscaleMax", "minAvailable", "k3sVersion", "k3sAirgapDir")

    def validate(self, cfg: ClusterConfig, bad: Complaint) -> ClusterConfig:
        version, image = cfg.k3s.version, cfg.nodes.image
        if not VERSION.match(version):
            bad("k3sVersion", version, "a k3s release such as v1.31.4+k3s1")
        airgap_dir = cfg.k3s.airgap_dir
        if airgap_dir and not airgap_dir.startswith("/"):
            bad("k3sAirgapDir", airgap_dir, "an absolute path to the directory with the k3s binary and images tarball")
        elif airgap_dir and cfg.substrate != "docker":
            problems = airgap_problems(airgap_dir)
            if problems:
                bad("k3sAirgapDir", airgap_dir, f"{'; '.join(problems)}: it needs the k3s binary (k3s), the images "
                    "tarball and the install script (install.sh) of the phoenix:k3sVersion release")
        repo, tag = split_image(image)
        if "k3s" not in repo:
            bad("nodeImage", image, "a k3s image such as rancher/k3s for orchestrator k3s")
        elif VERSION.match(version):
            # The official image is tagged by release: the tag follows phoenix:k3sVersion.
            if not tag:
                image = f"{image}:{image_tag(version)}"
            elif repo.endswith("rancher/k3s") and tag != image_tag(version):
                bad("nodeImage", image, f"tag {image_tag(version)} to match phoenix:k3sVersion ({version}), "
                    "or leave the tag out (it is then taken from phoenix:k3sVersion)")
        kubernetes.validate(cfg, bad)
        return dataclasses.replace(cfg, nodes=dataclasses.replace(cfg.nodes, image=image))

    def container_runtime(self, cfg: ClusterConfig, opts: Optional[pulumi.ResourceOptions] = None) -> NodeRuntime:
        """What a k3s node container runs: the rancher/k3s image with `server ...` or `agent ...`.

        The cluster token exists before the containers (they start k3s at once), so it is made here.
        It is written into each container as a file (--token-file) rather than passed in its environment,
        which anyone allowed to `docker inspect` containers on that engine could read; the file can still
        be read by whoever may `docker exec`/`docker cp` there, i.e. the engine's administrators.
        """
        token = cluster_token(f"{cfg.stack}-k3s-token", opts)
        public = "127.0.0.1" if cfg.app.bind_address == "0.0.0.0" else cfg.app.bind_address
        ha = cfg.nodes.managers > 1

        def start_after(ctx: NodeContext, earlier: Sequence[Node]) -> list[pulumi.Resource]:
            # A joining server's container starts once the previous server is a Ready member (etcd takes
            # one new member at a time); agents join whenever they are up.
            servers = [n for n in earlier if n.role == "manager"]
            if ctx.role != "manager" or not servers:
                return []
            previous = servers[-1]
            return [servers[0].run(f"{cfg.stack}-k3s-joined-{previous.name}", k3s_argv("wait-node", previous.name),
                                   parent=opts.parent if opts else None, depends_on=list(previous.ready))]

        return NodeRuntime(
            command=lambda ctx: container_command(ctx, public, ha),
            data_dir=DATA_DIR,
            # The first server publishes the entry port (-> Traefik) and the Kubernetes API.
            ports=[(cfg.app.published_port, INGRESS_PORT), (API_PORT, API_PORT)],
            files=lambda ctx: {
                TOKEN_FILE: token,
                NODE_PASSWORD_FILE: pulumi.Output.secret(token.apply(lambda t, n=ctx.name: node_password(t, n))),
                REGISTRIES_FILE: registries_yaml(ctx.registry),
            },
            start_after=start_after,
        )

    def deploy(self, name: str, cfg: ClusterConfig, nodes: Sequence[Node], services: Sequence[ServiceSpec],
               image: pulumi.Input[str], opts: pulumi.ResourceOptions) -> Deployment:
        """A k3s cluster on `nodes` and the app's services on it, through the first server's API."""
        in_container = cfg.substrate == "docker"
        args: K3sArgs = {"nodes": nodes, "version": cfg.k3s.version, "in_container": in_container}
        if not in_container:
            args.update(airgap_dir=cfg.k3s.airgap_dir, entry_port=cfg.app.published_port)
        cluster = K3s(f"{name}-k3s", args, opts)
        return kubernetes.deploy(name, cfg, cluster, services, image, opts)


ORCHESTRATOR = K3sOrchestrator()

"""Upstream Kubernetes, bootstrapped with kubeadm on the project's own nodes (the way kind builds
clusters, without --privileged).

Roles: `manager` nodes are control-plane nodes (stacked etcd: an odd number keeps its quorum),
`worker` nodes run the workloads. The first control-plane node runs `kubeadm init`; the others join
it one at a time (`kubeadm join --control-plane`: etcd takes one new member at a time), workers
whenever they are up. Everybody proves membership with a bootstrap token and, for control-plane
nodes, the certificate key that decrypts the uploaded cluster certificates: both random secrets made
once on the Pulumi host and kept (encrypted) in the stack's state, sent to nodes on stdin only.
Joining nodes check the API server against the CA's public-key hash read from the first node.

Container nodes run `local/k8s-node` (images/build.sh k8s-node: containerd, runc, the CNI plugins
and the Kubernetes binaries from Debian packages and the Go module proxy, the cluster images
preloaded), whose entrypoint supervises containerd and the kubelet. Hosts and VMs get the same
Debian packages, containerd's configuration and a kubelet service from the prepare step (host
prerequisite `kubeadm`), then kubeadm, kubelet and kubectl and the cluster images from the Pulumi
host's Kubernetes toolchain (phoenix:kubeadmToolchainDir), streamed over SSH: they never pull; leaving
the cluster (or destroy) resets them and removes what was installed. Every step on a node is an action
of scripts/kubeadm.sh, run through the node's Connection like the other bootstraps; the cluster
add-ons (pod network, metrics-server, Traefik for the Ingress) are applied from
scripts/kubeadm-addons.yaml. Above the bootstrap, the app is shared with k3s (kubernetes.deploy).
"""
from __future__ import annotations

import dataclasses
import hashlib
import shlex
from pathlib import Path
from typing import NotRequired, Optional, Sequence, TypedDict

import pulumi

from components.apps.app_image import ImageLoader
from components.apps.spec import ServiceSpec
from components.config import PROJECT, ClusterConfig, split_image
from components.nodes.docker_nodes import NodeRuntime
from components.nodes.node import Node, Port, script_argv
from components.orchestrators import kubernetes
from components.orchestrators.kubernetes import secret_once, user_kubeconfig
from components.orchestrators.orchestrator import Complaint, Deployment, Orchestrator

SCRIPTS = Path(__file__).parent / "scripts"
SCRIPT = kubernetes.bootstrap_script(SCRIPTS / "kubeadm.sh")
ADDONS = (SCRIPTS / "kubeadm-addons.yaml").read_text()
CONTAINERD_CONFIG = (Path(__file__).parents[2] / "images" / "k8s-node" / "containerd.toml").read_text()
"""The node image's containerd configuration: hosts get the same one (prepare.sh, on stdin)."""
BINARIES = ("kubeadm", "kubelet", "kubectl")
"""What hosts get from the toolchain's bin/ (kubeadm.sh install-binary)."""
DEFAULT_TOOLCHAIN = str(Path.home() / ".cache" / "k8s-airgap")
"""Where scripts/k8s-toolchain.sh (`make k8s-toolchain`) keeps it."""
CONTROL_PLANE_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
"""Image tarballs (by file stem) only control-plane nodes need; every node gets the others."""

NODE_IMAGE = "local/k8s-node:bookworm"
"""images/build.sh k8s-node: the Kubernetes release of scripts/k8s-toolchain.sh on Debian bookworm."""
API_PORT = 6443
INGRESS_PORT = 80
"""Traefik's entrypoint on every container node (the first one publishes it as phoenix:publishedPort)."""
DATA_DIR = "/var/lib/containerd"
"""containerd's image and snapshot store: a volume, since overlayfs snapshots cannot sit on overlayfs."""
NODE_COMMAND: list[str] = []
"""Nothing: the node image's entrypoint supervises containerd and the kubelet (images/k8s-node)."""
SECRETS_COMMAND = ("python3 -c 'import secrets, string; a = string.ascii_lowercase + string.digits; "
                   "t = lambda n: \"\".join(secrets.choice(a) for _ in range(n)); "
                   "print(t(6) + \".\" + t(16)); print(secrets.token_hex(32))'")
"""Line 1: a kubeadm bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}); line 2: the certificate key."""
ROLES = {"manager": "server", "worker": "worker"}


def kubeadm_argv(*args: str) -> list[str]:
    """argv that runs one action of the kubeadm bootstrap script on a node."""
    return script_argv(SCRIPT, "kubeadm", *args)


LOADER = ImageLoader(
    load=lambda name: kubeadm_argv("import", name),
    check=lambda ref: kubeadm_argv("has-image", ref),
    remove=lambda ref: kubeadm_argv("remove-image", ref),
)
"""Without a registry (hosts): the archive into containerd's k8s.io namespace; pods never pull it."""


def toolchain_problems(directory: str) -> list[str]:
    """What a Kubernetes toolchain directory lacks for hosts: the binaries, the image tarballs."""
    root = Path(directory)
    if not root.is_dir():
        return ["not a directory on the Pulumi host"]
    problems = [f"bin/{b} missing" for b in BINARIES if not (root / "bin" / b).is_file()]
    stems = {p.name.split(".tar")[0] for p in (root / "images").glob("*.tar") if p.is_file()}
    if not any(s.startswith("pause") for s in stems):
        problems.append("no images/pause*.tar")
    problems += [f"images/{s}.tar missing" for s in CONTROL_PLANE_IMAGES if s not in stems]
    return problems


def toolchain_images(directory: str, role: str) -> list[Path]:
    """The image tarballs a node of `role` needs (control-plane images only on managers)."""
    tars = sorted(p for p in (Path(directory) / "images").glob("*.tar") if p.is_file())
    return [p for p in tars if role == "manager" or p.name[:-len(".tar")] not in CONTROL_PLANE_IMAGES]


def registry_hosts(registry: str) -> str:
    """containerd's hosts.toml for the stack's registry: plain http (it has no TLS)."""
    return f'server = "http://{registry}"\n\n[host."http://{registry}"]\n  capabilities = ["pull", "resolve"]\n'


def join_secrets(secrets: str, role: str) -> str:
    """What a node gets on stdin (lines ended, as `read` needs): the token, and the certificate key for
    control-plane nodes."""
    lines = secrets.splitlines()
    return "\n".join(lines[:2] if role == "manager" else lines[:1]) + "\n"


class KubeadmArgs(TypedDict):
    nodes: Sequence[Node]
    """The cluster's nodes: role `manager` are control-plane nodes (an odd number), `worker` the rest."""
    secrets: pulumi.Output[str]
    """Bootstrap token and certificate key (a secret, two lines; see SECRETS_COMMAND)."""
    entry_port: int
    """Port of Traefik's entrypoint on every node."""
    api_url: pulumi.Input[str]
    """Where users reach the API server (the admin kubeconfig is pointed there)."""
    toolchain_dir: NotRequired[str]
    """Hosts only: the Kubernetes toolchain whose binaries and images are installed on each node
    (container nodes have them in their image)."""


class Kubeadm(pulumi.ComponentResource):
    """A kubeadm cluster on `nodes` (a kubernetes.KubernetesCluster: kubernetes.deploy puts the app on it)."""

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointed at `api_url`: a secret."""
    api_url: pulumi.Output[str]
    server_address: pulumi.Input[str]
    """The first control-plane node's address as the nodes reach it."""
    ready: list[pulumi.Resource]
    """The membership records and the add-ons: once they exist, every node is Ready and the add-ons applied."""
    leader: Node
    """The first control-plane node."""

    def __init__(self, name: str, args: KubeadmArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:orchestrators:Kubeadm", name, None, opts)
        nodes = list(args["nodes"])
        leader = kubernetes.first_server(nodes, "kubeadm")
        secrets = args["secrets"]
        toolchain = args.get("toolchain_dir")
        installed = {n.name: self._install(name, n, toolchain) if toolchain else [] for n in nodes}
        # Hosts leave for good when their init/join goes: reset, and what was installed removed.
        leave = kubeadm_argv("uninstall") if toolchain else None

        init = leader.run(f"{name}-init", pulumi.Output.all(leader.address, leader.public_address).apply(
            lambda a: kubeadm_argv("init", leader.name, a[0], a[1])), parent=self,
            stdin=secrets.apply(lambda s: join_secrets(s, "manager")), depends_on=installed[leader.name],
            delete=leave, delete_before_replace=True)
        # The add-ons are applied again whenever their manifests or the entry port change.
        addons = leader.run(f"{name}-addons", pulumi.Output.from_input(leader.public_address).apply(
            lambda public: kubeadm_argv("addons", str(args["entry_port"]), public)), parent=self,
                            stdin=ADDONS, depends_on=[init],
                            triggers=[hashlib.sha256(ADDONS.encode()).hexdigest()[:16]])
        ca_hash = leader.run(f"{name}-ca-hash", kubeadm_argv("ca-hash"), parent=self, depends_on=[init])
        raw = leader.run(f"{name}-kubeconfig", kubeadm_argv("kubeconfig"), parent=self, depends_on=[init],
                         secret_stdout=True)

        # Membership records, run on the first control-plane node: creating one waits until the node
        # is Ready, deleting one (the node left the config) drains it, takes its etcd member out and
        # deletes it. No replacement triggers: node names are stable, and a record replaced after its
        # node came back would delete the node again.
        members: list[pulumi.Resource] = []
        last_server: list[pulumi.Resource] = []
        for node in [leader] + [n for n in nodes if n is not leader]:
            joined = [init]
            if node is not leader:
                after = [init, *installed[node.name]]
                if node.role == "manager":
                    # kubeadm keeps the uploaded control-plane certificates two hours: a server that joins
                    # later (managers scaled out) needs them uploaded again, after the previous server.
                    after = [*installed[node.name],
                             leader.run(f"{name}-certs-{node.name}", kubeadm_argv("upload-certs"), parent=self,
                                        stdin=secrets.apply(lambda s: s.splitlines()[1] + "\n"),
                                        depends_on=[init, *last_server])]
                joined = [node.run(
                    f"{name}-join-{node.name}",
                    pulumi.Output.all(node.address, leader.address, ca_hash.stdout).apply(
                        lambda a, n=node: kubeadm_argv("join", n.name, a[0], a[1], a[2].strip(), ROLES[n.role])),
                    parent=self, stdin=secrets.apply(lambda s, r=node.role: join_secrets(s, r)), depends_on=after,
                    delete=leave, delete_before_replace=True)]
            member = leader.connection.command(
                f"{name}-member-{node.name}", kubeadm_argv("wait-node", node.name),
                delete=None if node is leader else kubeadm_argv("remove", node.name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*leader.ready, *node.ready, *joined, addons]))
            members.append(member)
            if node.role == "manager":
                last_server = [member]

        self.server_address = leader.address
        self.api_url = pulumi.Output.from_input(args["api_url"])
        context = f"{PROJECT}-{pulumi.get_stack()}"
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(raw.stdout, self.api_url).apply(
            lambda v: user_kubeconfig(v[0], v[1], context)))
        self.ready = [*members, addons]
        self.leader = leader
        self.register_outputs({
            "serverAddress": self.server_address,
            "apiUrl": self.api_url,
            "kubeconfig": self.kubeconfig,
            "members": [n.name for n in nodes],
        })

    @staticmethod
    def script(*args: str) -> list[str]:
        return kubeadm_argv(*args)

    def _install(self, name: str, node: Node, toolchain: str) -> list[pulumi.Resource]:
        """The toolchain's binaries and the node's cluster images, streamed onto a host over its
        connection (host key verified): nothing is pulled. Re-sent when the toolchain's pieces change
        (the cache links name them by version)."""
        keys = [node.replace_key] if node.replace_key is not None else []
        files = [(b, Path(toolchain) / "bin" / b, "install-binary") for b in BINARIES] + \
            [(p.name[:-len(".tar")], p, "import") for p in toolchain_images(toolchain, node.role)]
        return [node.connection.pipe(
            f"{name}-{'bin' if act == 'install-binary' else 'image'}-{node.name}-{what}",
            f"cat {shlex.quote(str(path))}", kubeadm_argv(act, what),
            triggers=[str(path.resolve()), *keys],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(node.ready))) for what, path, act in files]


class KubeadmOrchestrator(Orchestrator):
    """Upstream Kubernetes by kubeadm: control-plane and worker nodes from the local/k8s-node image."""

    name = "kubeadm"
    default_node_image = NODE_IMAGE
    ports = (Port("tcp", API_PORT, admins=True, purpose="api"), Port("udp", 8472, purpose="flannel VXLAN"),
             Port("tcp", 10250, purpose="kubelet"), Port("tcp", 2379, 2380, between="servers", purpose="etcd"),
             Port("tcp", 10257, between="local", purpose="controller-manager"),
             Port("tcp", 10259, between="local", purpose="scheduler"),
             Port("tcp", 9000, between="local", purpose="Traefik's ping (hostNetwork)"))
    host_prerequisites = ("kubeadm",)
    prepare_input = CONTAINERD_CONFIG
    image_loader = LOADER
    config_keys = ("autoscaleMax", "minAvailable", "apiPort", "kubeadmToolchainDir")

    def validate(self, cfg: ClusterConfig, bad: Complaint) -> ClusterConfig:
        api_port, toolchain = cfg.kubeadm.api_port, cfg.kubeadm.toolchain_dir
        if cfg.substrate == "docker":
            if toolchain:
                bad("kubeadmToolchainDir", toolchain, "empty on container nodes: their image holds the toolchain "
                    "(images/build.sh k8s-node); it is what hosts and VMs get")
            image = cfg.nodes.image
            if "k8s-node" not in split_image(image)[0]:
                bad("nodeImage", image, f"a kubeadm node image such as {NODE_IMAGE} (images/build.sh k8s-node), "
                    "or leave it empty")
            for key, port in (("publishedPort", cfg.app.published_port), ("registryPort", cfg.nodes.registry_port)):
                if api_port == port:
                    bad("apiPort", api_port, f"a port other than phoenix:{key} ({port}): both are published on the host")
        else:
            if api_port != API_PORT:
                bad("apiPort", api_port, f"{API_PORT} or unset: on hosts and VMs the API server listens on port "
                    f"{API_PORT} of the first control-plane node (phoenix:apiPort is the container nodes' published port)")
            toolchain = toolchain or DEFAULT_TOOLCHAIN
            cfg = dataclasses.replace(cfg, kubeadm=dataclasses.replace(cfg.kubeadm, toolchain_dir=toolchain))
            problems = toolchain_problems(toolchain)
            if problems:
                bad("kubeadmToolchainDir", toolchain, f"{'; '.join(problems)}: the Kubernetes toolchain "
                    "with bin/kubeadm, bin/kubelet, bin/kubectl and the image tarballs in images/ (`make k8s-toolchain`)")
        kubernetes.validate(cfg, bad)
        return cfg

    def container_runtime(self, cfg: ClusterConfig, opts: Optional[pulumi.ResourceOptions] = None) -> NodeRuntime:
        """What a kubeadm node container runs: the node image's supervisor; kubeadm comes later (deploy)."""
        return NodeRuntime(
            command=lambda ctx: list(NODE_COMMAND),
            data_dir=DATA_DIR,
            # The first control-plane node publishes the entry port (-> Traefik) and the API.
            ports=[(cfg.app.published_port, INGRESS_PORT), (cfg.kubeadm.api_port, API_PORT)],
            files=lambda ctx: {f"/etc/containerd/certs.d/{ctx.registry}/hosts.toml": registry_hosts(ctx.registry)},
        )

    def deploy(self, name: str, cfg: ClusterConfig, nodes: Sequence[Node], services: Sequence[ServiceSpec],
               image: pulumi.Input[str], opts: pulumi.ResourceOptions) -> Deployment:
        """A kubeadm cluster on `nodes` and the app's services on it, through the first node's API."""
        secrets = secret_once(f"{name}-kubeadm-secrets", SECRETS_COMMAND, opts)
        args: KubeadmArgs
        if cfg.substrate == "docker":
            public = "127.0.0.1" if cfg.app.bind_address == "0.0.0.0" else cfg.app.bind_address
            args = {"nodes": nodes, "secrets": secrets, "entry_port": INGRESS_PORT,
                    "api_url": f"https://{public}:{cfg.kubeadm.api_port}"}
        else:
            # Hosts: Traefik on the published port of every host, the API on the first server's.
            args = {"nodes": nodes, "secrets": secrets, "entry_port": cfg.app.published_port,
                    "api_url": pulumi.Output.concat("https://", nodes[0].public_address, f":{API_PORT}"),
                    "toolchain_dir": cfg.kubeadm.toolchain_dir}
        cluster = Kubeadm(f"{name}-kubeadm", args, opts)
        return kubernetes.deploy(name, cfg, cluster, services, image, opts)


ORCHESTRATOR = KubeadmOrchestrator()

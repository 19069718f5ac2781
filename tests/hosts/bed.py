"""The hosts test bed: machines that the program reaches only over SSH with a key.

Each host is a container of `local/ssh-node:bookworm` (images/build.sh ssh-node): sshd and its own
dockerd (docker-in-docker without --privileged, /var/lib/docker on a volume), on a bridge network of
its own with a fixed address. Beds for kubeadm (KUBEADM) use `local/ssh-k8s-node:bookworm` instead:
a bare Debian host with sshd that the prepare step installs containerd on (/var/lib/containerd on
a volume). Nothing else is shared with the machine that runs Pulumi: no Docker
socket, no host network, no `docker exec` by the program. The bed, not the stack, creates them,
with a generated client key pair and generated host keys; `known_hosts` and `ssh_config` in the
bed's directory let the test's own ssh clients (testinfra, checks) verify those host keys.

Names: containers, volumes and the network start with `phxbed-<stack>`; all carry the label
`io.phoenix.bed=<stack>`, by which `destroy` finds them.
"""
from __future__ import annotations

import io
import ipaddress
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

IMAGE = "local/ssh-node:bookworm"
LABEL = "io.phoenix.bed"
HOST_OFFSET = 10
"""Hosts get .10, .11, ... of the bed's subnet."""
# docker-in-docker where --privileged is refused (README, "Hosts without --privileged").
DIND_FLAGS = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
              "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
              "--tmpfs", "/run", "--tmpfs", "/var/run", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
              "--cgroupns", "host", "--init"]
# What "a host as it was found" means for the checks after destroy: these listings must not change.
SNAPSHOT = {
    "swarm": "docker info --format '{{.Swarm.LocalNodeState}}'",
    "containers": "docker ps -a --format '{{.Names}} {{.Image}}' | sort",
    "images": "docker images -a --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort",
    "networks": "docker network ls --format '{{.Name}} {{.Driver}}' | sort",
    "volumes": "docker volume ls -q | sort",
    "files": "ls -A /etc/docker /etc/phoenix /etc/systemd/system /etc/rancher /var/lib/rancher /var/tmp /tmp /root "
             "2>/dev/null; true",
    "processes": "ps -eo comm= | grep -vxE 'ps|grep|sort' | sort -u",  # less this command's own
}


# kubeadm hosts as found: no Kubernetes files, images, containers, processes or interfaces. The
# prerequisites prepare.sh installs (containerd and the kubelet service, idle) stay, as docker.io
# does on Swarm hosts; so do kube-proxy's iptables rules, which `kubeadm reset` leaves as well.
KUBEADM_SNAPSHOT = {
    "kubernetes files": "find /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d /var/lib/cni "
                        "/var/lib/phoenix-kubeadm /usr/local/bin -type f 2>/dev/null | sort; true",
    "images": "ctr -n k8s.io images ls -q 2>/dev/null | sort; true",
    "containers": "ctr -n k8s.io containers ls -q 2>/dev/null | sort; true",
    "processes": "ps -eo comm= | grep -E '^(kube|etcd|flanneld|traefik|coredns|metrics-server|pause|containerd-shim)' "
                 "| sort -u; true",
    "interfaces": "ip -o link show | awk -F': ' '{ print $2 }' | grep -E '^(cni0|flannel|veth)' | sort; true",
    "files": "ls -A /var/tmp /tmp /root 2>/dev/null; true",
}


@dataclass(frozen=True)
class BedKind:
    """What the bed's hosts are made of."""

    image: str
    build: str
    """images/build.sh target of `image`."""
    data_dir: str
    """Kept on a volume (overlay snapshots cannot sit on the container's overlayfs)."""
    ready: str
    """A command that succeeds over SSH once the host is up."""
    snapshot: Mapping[str, str]
    """What "as found" compares (see SNAPSHOT)."""


SWARM = BedKind(IMAGE, "ssh-node", "/var/lib/docker", "docker info --format '{{.ServerVersion}}'", SNAPSHOT)
KUBEADM = BedKind("local/ssh-k8s-node:bookworm", "ssh-k8s-node", "/var/lib/containerd", "true", KUBEADM_SNAPSHOT)


class BedError(RuntimeError):
    pass


def docker(*args: str, check: bool = True, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    if check and done.returncode != 0:
        raise BedError(f"docker {' '.join(args[:3])}...: {done.stderr.decode(errors='replace').strip()}")
    return done


def missing_requirement(kind: BedKind = SWARM) -> str:
    """Why no bed of `kind` can be made here, or ''."""
    for tool in ("docker", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install docker.io openssh-client)"
    if docker("info", check=False, timeout=30).returncode != 0:
        return "no Docker engine answers (scripts/engine.sh starts one)"
    if docker("image", "inspect", kind.image, check=False).returncode != 0:
        return f"the bed image {kind.image} is missing: images/build.sh {kind.build}"
    return ""


@dataclass(frozen=True)
class BedHost:
    name: str
    """The host's hostname (and the `name` the stack gives the node)."""
    address: str
    container: str


def keygen(path: Path, comment: str) -> str:
    """A new ed25519 key pair at `path` (no passphrase); returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar stream of root-owned files (path -> (content, mode)) with their parent directories 0700."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        dirs = sorted({str(Path(p).parent) for p in files})
        for d in dirs:
            info = tarfile.TarInfo(d.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o700 if d.startswith("/root") else 0o755
            tar.addfile(info)
        for path, (content, mode) in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


class Bed:
    """A set of SSH hosts of `kind` on network `phxbed-<stack>` (subnet given), files under `directory`."""

    def __init__(self, stack: str, subnet: str, directory: Path, kind: BedKind = SWARM):
        self.stack, self.subnet, self.directory, self.kind = stack, ipaddress.ip_network(subnet), directory, kind
        self.prefix = f"phxbed-{stack}"
        self.network = self.prefix
        self.key_file = directory / "id_ed25519"
        self.known_hosts = directory / "known_hosts"
        self.ssh_config = directory / "ssh_config"
        self.hosts: list[BedHost] = []

    # --- life cycle --------------------------------------------------------------------------------

    def create(self, names: Sequence[str]) -> "Bed":
        """Key pair, network and one started host per name; waits until each answers over SSH."""
        self.destroy()  # leftovers of an interrupted run
        shutil.rmtree(self.directory, ignore_errors=True)  # links into the repo are removed, not followed
        self.directory.mkdir(parents=True)
        self.public_key = keygen(self.key_file, f"phoenix-bed-{self.stack}")
        docker("network", "create", "--driver", "bridge", "--subnet", str(self.subnet),
               "--gateway", str(self.subnet[1]), "--label", f"{LABEL}={self.stack}", self.network)
        known = []
        for i, name in enumerate(names):
            host = BedHost(name, str(self.subnet[HOST_OFFSET + i]), f"{self.prefix}-{name}")
            host_key = keygen(self.directory / f"host-{name}", f"{name}")
            self._start(host, (self.directory / f"host-{name}").read_bytes(), host_key)
            known.append(f"{host.address} {' '.join(host_key.split()[:2])}")
            self.hosts.append(host)
        self.known_hosts.write_text("\n".join(known) + "\n")
        self.ssh_config.write_text(
            f"Host {' '.join(h.address for h in self.hosts)}\n"
            f"  User root\n  IdentityFile {self.key_file}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  StrictHostKeyChecking yes\n"
            f"  BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n")
        for host in self.hosts:
            self.wait_ready(host)
        return self

    def _start(self, host: BedHost, host_key: bytes, host_key_pub: str) -> None:
        volume = f"{host.container}-{Path(self.kind.data_dir).name}"
        docker("volume", "create", "--label", f"{LABEL}={self.stack}", volume)
        docker("create", "--name", host.container, "--hostname", host.name, "--label", f"{LABEL}={self.stack}",
               "--network", self.network, "--ip", host.address, *DIND_FLAGS,
               "-v", f"{volume}:{self.kind.data_dir}", self.kind.image)
        files = {"/etc/ssh/ssh_host_ed25519_key": (host_key, 0o600),
                 "/etc/ssh/ssh_host_ed25519_key.pub": (host_key_pub.encode() + b"\n", 0o644),
                 "/root/.ssh/authorized_keys": (self.public_key.encode() + b"\n", 0o600)}
        docker("cp", "-", f"{host.container}:/", input=_tar(files))
        docker("start", host.container)

    def wait_ready(self, host: BedHost, timeout: float = 120) -> None:
        """sshd answers with the generated host key, and the host is up (its own dockerd answers)."""
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            done = self.ssh(host, self.kind.ready, check=False)
            if done.returncode == 0:
                return
            last = done.stderr.strip()
            time.sleep(1)
        raise BedError(f"bed host {host.name} ({host.address}) not ready in {timeout:.0f} s: {last}")

    def destroy(self) -> None:
        """Every container, volume and network labelled with this bed's stack."""
        for kind in ("container", "volume", "network"):
            listing = docker(kind, "ls", *(["-a"] if kind == "container" else []), "-q",
                             "--filter", f"label={LABEL}={self.stack}", check=False).stdout.decode().split()
            if listing:
                docker(kind, "rm", *(["-f"] if kind != "network" else []), *listing, check=False, timeout=300)

    # --- reaching the hosts ------------------------------------------------------------------------

    def host(self, name: str) -> BedHost:
        return next(h for h in self.hosts if h.name == name)

    def ssh(self, host: BedHost, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """`command` on `host` through the system ssh client, host key verified."""
        done = subprocess.run(["ssh", "-F", str(self.ssh_config), host.address, command],
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise BedError(f"{host.name}: {command}: {done.stderr.strip()}")
        return done

    def snapshot(self, host: BedHost) -> dict[str, str]:
        """What the checks compare before `pulumi up` and after `pulumi destroy` (SNAPSHOT)."""
        return {key: self.ssh(host, command).stdout.strip() for key, command in self.kind.snapshot.items()}

    def testinfra_args(self) -> list[str]:
        """pytest options that make testinfra's ssh:// backend use the bed's key and known hosts."""
        return [f"--ssh-config={self.ssh_config}"]

    def stack_hosts(self, roles: dict[str, str]) -> list[dict]:
        """The `phoenix:hosts` entries of the named hosts (name -> role)."""
        return [{"name": name, "address": self.host(name).address, "role": role} for name, role in roles.items()]

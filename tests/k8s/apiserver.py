"""A throwaway Kubernetes API server for validation: Debian's etcd and kube-apiserver on 127.0.0.1.

Both, and kubectl, come from scripts/k8s-toolchain.sh ($K8S_TOOLCHAIN_DIR/bin), never from PATH, so
that their versions are the pinned ones (a kubectl on PATH may be two minor versions away). No node,
no scheduler, no controller: objects are stored and validated exactly as a cluster's API server would, which is
what `kubectl apply --dry-run=server` needs. Authentication is one random admin token (group
system:masters) kept in files of the temporary directory, never on a command line.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / "scripts" / "k8s-toolchain.sh"
BIN = Path(os.environ.get("K8S_TOOLCHAIN_DIR", Path.home() / ".cache" / "k8s-airgap")) / "bin"
ETCD_PORTS = range(23790, 23800, 2)   # client port, peer port = client + 1
API_PORTS = range(16443, 16450)
READY_TIMEOUT_S = 120
VERSIONS = dict(re.findall(r"^([A-Z_]+_VERSION)=\$\{\1:-([^}]+)\}", TOOLCHAIN.read_text(), re.M))
"""The toolchain's pinned versions: KUBE_VERSION, TRAEFIK_VERSION, ... (their defaults in the script)."""
KUBE_VERSION, TRAEFIK_VERSION = VERSIONS["KUBE_VERSION"], VERSIONS["TRAEFIK_VERSION"]
# executable -> the toolchain piece that provides it
PIECES = {"etcd": "etcd", "kube-apiserver": "kube-apiserver", "kubectl": "kubectl",
          "kube-controller-manager": "kube-binaries", "traefik": "traefik"}
NAMED = {"etcd": "etcd (Debian etcd-server)", "traefik": f"traefik {TRAEFIK_VERSION}"}
NEEDED = ("etcd", "kube-apiserver", "kubectl")


def find(exe: str) -> str | None:
    """The toolchain's build of `exe`."""
    built = BIN / exe
    return str(built) if os.access(built, os.X_OK) else None


def missing_reason(*also: str, needed: tuple[str, ...] = NEEDED) -> str | None:
    """Why no API server (and the executables `also` asks for) can be started here (None when all are there)."""
    absent = [exe for exe in (*needed, *also) if find(exe) is None]
    if not absent:
        return None
    pieces = [PIECES[exe] for exe in absent]
    try:
        seconds = int(subprocess.run(["bash", str(TOOLCHAIN), "--estimate", *pieces], capture_output=True,
                                     text=True, timeout=60).stdout.strip())
        cost = f"~{max(1, round(seconds / 60))} min cold"
    except (ValueError, subprocess.SubprocessError):
        cost = "cold build time unknown"
    named = ", ".join(NAMED.get(exe, f"{exe} {KUBE_VERSION}") for exe in absent)
    return f"{named} not built: make k8s-toolchain ({cost}; only these: bash scripts/k8s-toolchain.sh {' '.join(pieces)})"


def free_port(ports: range, also_next: bool = False) -> int:
    for port in ports:
        try:
            for p in (port, port + 1) if also_next else (port,):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} on 127.0.0.1")


class ApiServer:
    """etcd + kube-apiserver in `workdir`; `kubectl(...)` talks to it as cluster admin."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.procs: list[subprocess.Popen] = []
        self.kubeconfig = workdir / "kubeconfig"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def start(self) -> "ApiServer":
        d = self.dir
        etcd_port, api_port = free_port(ETCD_PORTS, also_next=True), free_port(API_PORTS)
        self.api_port = api_port
        peer = f"http://127.0.0.1:{etcd_port + 1}"
        self._spawn("etcd", [
            find("etcd"), "--name", "validation", "--data-dir", str(d / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"validation={peer}"])
        # The service-account key pair every API server needs, from openssl as the issue measured.
        subprocess.run(["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub")],
                       check=True, capture_output=True)
        token = secrets.token_hex(24)
        tokens = d / "tokens.csv"
        tokens.write_text(f'{token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        self._spawn("kube-apiserver", [
            find("kube-apiserver"), "--bind-address=127.0.0.1", f"--secure-port={api_port}",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={d / 'sa.pub'}", f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/12", "--authorization-mode=Node,RBAC",
            f"--token-auth-file={tokens}", f"--cert-dir={d / 'certs'}"])
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: validation\n  cluster:\n    server: https://127.0.0.1:{api_port}\n"
            # The self-signed serving certificate (and its CA) kube-apiserver writes there on start.
            f"    certificate-authority: {self.ca_file()}\n"
            f"users:\n- name: admin\n  user:\n    token: {token}\n"
            "contexts:\n- name: validation\n  context:\n    cluster: validation\n    user: admin\n"
            "current-context: validation\n")
        self.kubeconfig.chmod(0o600)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for proc, name in zip(self.procs, ("etcd", "kube-apiserver")):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            if self.kubectl("get", "--raw=/readyz").stdout.strip() == "ok":
                return
            time.sleep(1)
        raise RuntimeError(f"kube-apiserver not ready after {READY_TIMEOUT_S} s:\n{self.log_tail('kube-apiserver')}")

    def start_controllers(self, *controllers: str) -> None:
        """kube-controller-manager with only `controllers` (e.g. deployment-controller), as cluster admin;
        autoscalers are synced every second."""
        self._spawn("kube-controller-manager", [
            find("kube-controller-manager"), f"--kubeconfig={self.kubeconfig}", f"--controllers={','.join(controllers)}",
            "--leader-elect=false", "--secure-port=0", "--horizontal-pod-autoscaler-sync-period=1s"])

    def server_address(self) -> tuple[str, int]:
        """(host, port) of the API server."""
        return "127.0.0.1", self.api_port

    def ca_file(self) -> Path:
        """The certificate clients verify the API server with (self-signed, written on start)."""
        return self.dir / "certs" / "apiserver.crt"

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([find("kubectl"), f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
                              capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class LiveCluster:
    """A running stack's API server instead of a throwaway one: `kubectl(...)` as cluster admin with the
    stack's kubeconfig (scripts/k8s_state.KubeTarget: the Pulumi output, in a 0600 file)."""

    def __init__(self, stack: str):
        from scripts.swarm_state import resolve
        self.target = resolve(stack)
        if self.target.orchestrator == "swarm":
            raise LookupError(f"stack {stack} runs Swarm: no Kubernetes API to validate against")

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([find("kubectl"), f"--kubeconfig={self.target.kubeconfig}", *args], input=stdin,
                              capture_output=True, text=True, timeout=120)

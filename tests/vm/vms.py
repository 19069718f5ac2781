"""Debian VMs under QEMU/KVM for the tests: image, private network, boot, SSH, teardown.

Network (all of it created here, removed in teardown): a network namespace `phx<pid>` holding a
Linux bridge, one tap device per VM, and one end of a veth pair whose other end stays on this
machine with the address .1 of a private /24 (10.231.N.0/24, the first N free in the routing table,
or $PHOENIX_VM_SUBNET). VMs get .11, .12, ... on that bridge: they reach each other at layer 2
(Swarm's 2377/tcp, 7946/tcp+udp, 4789/udp) and this machine reaches their SSH directly. The VMs have
no default route, and the namespace forwards nothing: no packet of theirs leaves the /24.

QEMU runs inside the namespace (to open its tap), with direct kernel boot from the image's kernel
and initrd, a copy-on-write qcow2 overlay of the cached disk per VM, and the VM's identity (name,
address, authorized key) on the kernel command line (images/vm/build.sh).
"""
from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from components.nodes.node import Ssh
from tests.hosts.bed import SNAPSHOT

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "images" / "vm" / "build.sh"
NS_PREFIX = "phx"
# What "a VM as it was found" means: the bed's listings, kernel threads left out of the processes
# (their names change by themselves).
VM_SNAPSHOT = {**SNAPSHOT, "processes": SNAPSHOT["processes"].replace("ps -eo comm=", "ps --ppid 2 -p 2 --deselect -o comm=")}
# Under emulation, starved nodes miss Swarm's heartbeat and flap to Down: the tests raise it to 30 s
# after init (a test-environment setting only, not part of the bootstrap; docs/vms.md).
TCG_HEARTBEAT = ["docker", "swarm", "update", "--dispatcher-heartbeat", "30s"]
# The host CPU without IA32_ARCH_CAPABILITIES: under nested KVM, qemu aborts setting that MSR
# ("failed to set MSR 0x10a"). $PHOENIX_VM_CPU overrides.
CPU = "host,-arch-capabilities"

TOOLS = {  # command -> Debian package
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
}
BUILD_TOOLS = {"debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs"}


def cache_dir() -> Path:
    return Path(os.environ.get("PHOENIX_CACHE", Path.home() / ".cache" / "phoenix")) / "vm"


def missing_requirement(need_kvm: bool = True) -> Optional[str]:
    """Why the VM tests cannot run here, or None."""
    if need_kvm and not os.path.exists("/dev/kvm"):
        return "/dev/kvm is missing: this machine has no KVM (enable virtualization / nested KVM)"
    if need_kvm and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user (add it to group kvm)"
    if os.geteuid() != 0:
        return "needs root: the test network is a network namespace with a bridge and tap devices"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing: no tap devices for the VMs"
    cached = any((d / "complete").exists() for d in cache_dir().glob("*")) if cache_dir().exists() else False
    tools = {**TOOLS, **({} if cached else BUILD_TOOLS)}
    for command, package in tools.items():
        if shutil.which(command) is None:
            return f"{command} is missing: apt-get install {package} (scripts/vm-deps.sh installs all VM test packages)"
    return None


def accel_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-enable-kvm", "-cpu", os.environ.get("PHOENIX_VM_CPU", CPU)]
    # Full software emulation (multi-threaded TCG): slow, but any x86-64 kernel boots.
    return ["-accel", "tcg,thread=multi", "-cpu", os.environ.get("PHOENIX_VM_CPU", "max")]


def kvm_boots_stock_kernel(image: Path, seconds: float = 10) -> Optional[str]:
    """None when a stock Debian kernel starts under KVM here, else why not.

    /dev/kvm opening is not enough: a PVM host (module kvm_pvm, nested virtualization without
    hardware support) only runs guest kernels built for PVM; a stock kernel hangs before its first
    message. The probe boots the image's kernel for a few seconds and waits for "Linux version".
    """
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serial.log"
        proc = subprocess.Popen(
            ["qemu-system-x86_64", *accel_args("kvm"), "-m", "256", "-nographic", "-monitor", "none",
             "-serial", f"file:{log}", "-no-reboot", "-net", "none", "-kernel", str(image / "vmlinuz"),
             "-append", "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if log.exists() and b"Linux version" in log.read_bytes():
                    return None
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
            output = proc.communicate()[0].decode(errors="replace").strip()
    pvm = " (this host's /dev/kvm is PVM, module kvm_pvm: it runs only PVM-built guest kernels)" \
        if os.path.exists("/sys/module/kvm_pvm") else ""
    detail = f": {output.splitlines()[-1]}" if output else f": no kernel message in {seconds:.0f} s"
    return f"a stock Debian kernel does not boot under KVM here{pvm}{detail}"


class ImageError(RuntimeError):
    pass


def build_image() -> tuple[Path, float]:
    """The cached image directory (disk.qcow2, vmlinuz, initrd.img) and the seconds spent here."""
    t0 = time.monotonic()
    result = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise ImageError(f"images/vm/build.sh failed (exit {result.returncode}): {result.stderr.strip()[-1500:]}")
    return Path(result.stdout.strip().splitlines()[-1]), time.monotonic() - t0


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, **kw)


def free_subnet() -> ipaddress.IPv4Network:
    if os.environ.get("PHOENIX_VM_SUBNET"):
        return ipaddress.ip_network(os.environ["PHOENIX_VM_SUBNET"])
    used = []
    for line in sh("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for n in range(256):
        candidate = ipaddress.ip_network(f"10.231.{n}.0/24")
        if not any(candidate.overlaps(u) for u in used if u.prefixlen > 0):
            return candidate
    raise RuntimeError("no free 10.231.N.0/24 for the VM network; set PHOENIX_VM_SUBNET")


def remove_stale_networks() -> None:
    """Namespaces of earlier runs whose test process is gone (killed before its teardown)."""
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX) and name[len(NS_PREFIX):].isdigit():
            if not os.path.exists(f"/proc/{name[len(NS_PREFIX):]}"):
                sh("ip", "netns", "del", name, check=False)
                sh("ip", "link", "del", f"{name}h", check=False)


@dataclass
class Network:
    """Bridge in a namespace of its own, plus a veth to this machine (see the module docstring)."""

    ns: str
    subnet: ipaddress.IPv4Network
    taps: list[str] = field(default_factory=list)

    @property
    def host_veth(self) -> str:
        return f"{self.ns}h"

    @classmethod
    def create(cls) -> "Network":
        remove_stale_networks()
        net = cls(ns=f"{NS_PREFIX}{os.getpid()}", subnet=free_subnet())
        try:
            prefix = net.subnet.prefixlen
            sh("ip", "netns", "add", net.ns)
            sh("ip", "-n", net.ns, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", net.ns, "link", "set", "br0", "up")
            sh("ip", "-n", net.ns, "link", "set", "lo", "up")
            sh("ip", "link", "add", net.host_veth, "type", "veth", "peer", "name", "uplink", "netns", net.ns)
            sh("ip", "-n", net.ns, "link", "set", "uplink", "master", "br0", "up")
            sh("ip", "addr", "add", f"{net.subnet[1]}/{prefix}", "dev", net.host_veth)
            sh("ip", "link", "set", net.host_veth, "up")
        except Exception:
            net.destroy()
            raise
        return net

    def address(self, index: int) -> str:
        return str(self.subnet[11 + index])

    def add_tap(self, index: int) -> str:
        tap = f"tap{index}"
        sh("ip", "-n", self.ns, "tuntap", "add", tap, "mode", "tap")
        sh("ip", "-n", self.ns, "link", "set", tap, "master", "br0", "up")
        self.taps.append(tap)
        return tap

    def destroy(self) -> None:
        # Deleting the namespace deletes the bridge, the taps and the veth pair (both ends).
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "link", "del", self.host_veth, check=False)


@dataclass
class Vm:
    name: str
    address: str
    prefix: int
    directory: Path
    process: Optional[subprocess.Popen] = None
    started: float = 0.0
    ssh_ready: float = 0.0

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.console.log"

    def start(self, image: Path, network: Network, index: int, public_key: str, memory_mb: int, accel: str) -> None:
        overlay = self.directory / f"{self.name}.qcow2"
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "disk.qcow2"), "-F", "qcow2", str(overlay))
        tap = network.add_tap(index)
        key = base64.b64encode(public_key.strip().encode()).decode()
        cmdline = (f"root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 quiet systemd.show_status=0 "
                   f"phoenix.hostname={self.name} phoenix.ip={self.address}/{self.prefix} phoenix.key={key}")
        argv = ["ip", "netns", "exec", network.ns, "qemu-system-x86_64", *accel_args(accel),
                "-smp", "1", "-m", str(memory_mb), "-nographic", "-nodefaults", "-vga", "none",
                "-monitor", "none", "-serial", f"file:{self.log}", "-no-reboot",
                "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"), "-append", cmdline,
                "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
                "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=net0,mac=52:54:00:23:1a:{index + 11:02x},romfile=",
                "-device", "virtio-rng-pci"]
        self.started = time.monotonic()
        # `ip netns exec` execs qemu: the Popen pid is qemu's own.
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.directory / f"{self.name}.qemu.log", "w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def console_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console log)"


@dataclass
class Cluster:
    """The booted VMs and how to reach them over SSH."""

    vms: list[Vm]
    network: Network
    key_file: Path
    known_hosts: Path
    ssh_config: Path
    image: Path
    image_seconds: float
    powered_on: float = 0.0
    """time.monotonic() when the first VM was started."""

    def connection(self, vm: Vm) -> Ssh:
        return Ssh(host=vm.address, user="root", port=22, private_key=self.key_file.read_text(),
                   key_file=str(self.key_file), known_hosts=str(self.known_hosts))

    def ssh_argv(self, vm: Vm, argv: Sequence[str]) -> list[str]:
        """The VM's Ssh connection argv, plus `-F ssh_config` for connection sharing.

        The config only adds a ControlMaster per VM: an SSH handshake costs seconds on an emulated
        VM, a command over the shared connection a fraction of one.
        """
        ssh, *rest = self.connection(vm).argv(argv)
        return [ssh, "-F", str(self.ssh_config), *rest]

    def run(self, vm: Vm, argv: Sequence[str], *, stdin: Optional[str] = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run argv on the VM through its Ssh connection's argv (the system ssh client)."""
        result = subprocess.run(self.ssh_argv(vm, argv), input=stdin, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{vm.name}: {argv[:1]}... exited {result.returncode}: {result.stderr.strip()[-2000:]}")
        return result

    def host(self, name: str) -> Vm:
        return next(vm for vm in self.vms if vm.name == name)

    def snapshot(self, vm: Vm) -> dict[str, str]:
        """The listings that must be the same after `pulumi destroy` as before the first `up`."""
        return {key: self.run(vm, ["sh", "-c", command]).stdout.strip() for key, command in VM_SNAPSHOT.items()}

    def host_key(self, vm: Vm) -> str:
        """`TYPE BASE64` of the VM's host key, as the tests' ssh accepted it at first contact."""
        known = sh("ssh-keygen", "-F", vm.address, "-f", str(self.known_hosts), timeout=30).stdout
        return next(" ".join(line.split()[1:3]) for line in known.splitlines() if line and not line.startswith("#"))

    def wait_ssh(self, vm: Vm, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if vm.process is not None and vm.process.poll() is not None:
                raise RuntimeError(f"{vm.name}: qemu exited with {vm.process.returncode}; console:\n{vm.console_tail()}")
            probe = subprocess.run(self.ssh_argv(vm, ["true"]), capture_output=True, timeout=60)
            if probe.returncode == 0:
                vm.ssh_ready = time.monotonic()
                return vm.ssh_ready - vm.started
            time.sleep(0.5)
        raise RuntimeError(f"{vm.name}: no SSH at {vm.address} after {timeout:.0f} s; console:\n{vm.console_tail()}")

    def destroy(self) -> None:
        for vm in self.vms:  # the shared connections' master processes, then the VMs
            subprocess.run(["ssh", "-F", str(self.ssh_config), "-O", "exit", vm.address], capture_output=True, timeout=30)
            vm.stop()
        self.network.destroy()


def boot(count: int, workdir: Path, memory_mb: int = 1024, accel: str = "kvm") -> Cluster:
    """Build (or reuse) the image, create the network, boot `count` VMs and wait for their SSH."""
    image, image_seconds = build_image()
    key_file = workdir / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "phoenix-vm-test", "-f", str(key_file))
    known_hosts = workdir / "known_hosts"
    known_hosts.touch()
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(
        "Host *\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        "  StrictHostKeyChecking accept-new\n  UserKnownHostsFile {known}\n  ConnectTimeout 10\n"
        "  ControlMaster auto\n  ControlPath {dir}/cm-%h\n  ControlPersist 900\n".format(
            key=key_file, known=known_hosts, dir=workdir))
    network = Network.create()
    cluster = Cluster(vms=[], network=network, key_file=key_file, known_hosts=known_hosts, ssh_config=ssh_config,
                      image=image, image_seconds=image_seconds)
    try:
        public_key = (workdir / "id_ed25519.pub").read_text()
        for i in range(count):
            vm = Vm(name=f"vm{i}", address=network.address(i), prefix=network.subnet.prefixlen, directory=workdir)
            cluster.vms.append(vm)
            vm.start(image, network, i, public_key, memory_mb, accel)
        with ThreadPoolExecutor(max_workers=count) as pool:  # each VM's own time to SSH
            list(pool.map(cluster.wait_ssh, cluster.vms))
    except Exception:
        cluster.destroy()
        raise
    return cluster

"""Integration tests of the offline images (need a Docker engine and the built images).

Build everything with `images/build.sh all` (starts the engine with scripts/engine.sh).
Every container, network and volume created here is named pst-*-<random> and labelled
io.phoenix.test=1; fixture finalizers remove them.
"""

import io
import json
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

NODE_IMAGE = "local/swarm-node:bookworm"
BASE_IMAGE = "local/python-base:bookworm"
REGISTRY_IMAGE = "local/registry:bookworm"
APP_IMAGE = "local/sample-app:1"
BUILD_TARGET = {NODE_IMAGE: "node", BASE_IMAGE: "base", REGISTRY_IMAGE: "registry", APP_IMAGE: "app"}
TEST_LABEL = "io.phoenix.test=1"
# The docker-in-docker run options the project uses where --privileged is not allowed.
DIND_OPTS = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
             "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
             "--security-opt", "systempaths=unconfined", "--tmpfs", "/run", "--tmpfs", "/var/run",
             "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns", "host"]


def docker(*args, check=True, timeout=120, input=None):
    r = subprocess.run(["docker", *args], capture_output=True, text=input is None or isinstance(input, str),
                       timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}): {r.stderr!s}")
    return r


def _engine_problem():
    if shutil.which("docker") is None:
        return "no docker CLI on PATH: run scripts/engine.sh (as root)"
    try:
        r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker info` timed out: start the engine with scripts/engine.sh"
    if r.returncode != 0:
        return "`docker info` fails (no Docker engine answers): start one with scripts/engine.sh (as root)"
    return None


_PROBLEM = _engine_problem()
pytestmark = [pytest.mark.engine, pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")]


def require(*images):
    for image in images:
        if docker("image", "inspect", image, check=False).returncode != 0:
            pytest.skip(f"image {image} missing: build it with `images/build.sh {BUILD_TARGET[image]}`")


class Resources:
    """Unique names + cleanup of everything a test creates."""

    def __init__(self):
        self.suffix = uuid.uuid4().hex[:8]
        self.containers, self.networks, self.volumes, self.images = [], [], [], []

    def name(self, kind):
        return f"pst-{kind}-{self.suffix}"

    def network(self, kind="net"):
        name = self.name(kind)
        docker("network", "create", "--label", TEST_LABEL, name)
        self.networks.append(name)
        return name

    def volume(self, kind="vol"):
        name = self.name(kind)
        docker("volume", "create", "--label", TEST_LABEL, name)
        self.volumes.append(name)
        return name

    def run(self, kind, image, *args, opts=()):
        name = self.name(kind)
        self.containers.append(name)
        docker("run", "-d", "--name", name, "--label", TEST_LABEL, *opts, image, *args)
        return name

    def cleanup(self):
        for c in reversed(self.containers):
            docker("rm", "-f", "-v", c, check=False)
        for n in self.networks:
            docker("network", "rm", n, check=False)
        for v in self.volumes:
            docker("volume", "rm", "-f", v, check=False)
        for i in self.images:
            docker("rmi", "-f", i, check=False)


@pytest.fixture
def res():
    r = Resources()
    yield r
    r.cleanup()


def wait_for(fn, timeout, what, interval=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def host_port(container, port):
    out = docker("port", container, f"{port}/tcp").stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def http_get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_node(res, *dockerd_args, network=None):
    """A docker-in-docker node with /var/lib/docker on a named volume; waits for its dockerd."""
    vol = res.volume("nodevol")
    opts = [*DIND_OPTS, "-v", f"{vol}:/var/lib/docker"]
    if network:
        opts += ["--network", network]
    node = res.run("node", NODE_IMAGE, "dockerd", "--host=unix:///var/run/docker.sock", *dockerd_args, opts=opts)
    wait_for(lambda: docker("exec", node, "docker", "info", check=False, timeout=20).returncode == 0,
             60, f"dockerd inside {node}")
    return node


# --- node ---------------------------------------------------------------------------------

def test_node_image_runs_dockerd_with_overlay2_and_swarm(res):
    require(NODE_IMAGE)
    node = start_node(res, "--insecure-registry=10.255.255.1:5000")
    info = json.loads(docker("exec", node, "docker", "info", "--format", "{{json .}}").stdout)
    assert info["Driver"] == "overlay2", info["Driver"]
    assert "10.255.255.1:5000" in json.dumps(info["RegistryConfig"])
    # iptables works inside (dockerd made its NAT chain)
    assert docker("exec", node, "iptables", "-t", "nat", "-nL", "DOCKER", check=False).returncode == 0
    ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", node).stdout.strip()
    docker("exec", node, "docker", "swarm", "init", "--advertise-addr", ip)
    state = docker("exec", node, "docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    assert state == "active"


# --- app ----------------------------------------------------------------------------------

BASE_MAX_MB = 60
"""Every node unpacks the app image: its base is python3 and /bin/sh, not a distribution (~40 MB)."""


def test_base_is_the_interpreter_and_a_shell_not_a_distribution():
    require(BASE_IMAGE)
    size_mb = int(docker("image", "inspect", "-f", "{{.Size}}", BASE_IMAGE).stdout) / 1e6
    assert size_mb < BASE_MAX_MB, f"{BASE_IMAGE} is {size_mb:.0f} MB"
    # What the services and probes use works: TLS with the CA bundle, DNS, a shell-form command.
    out = docker("run", "--rm", BASE_IMAGE, "sh", "-c", "python3 -c 'import ssl, socket, http.server, json;"
                 "print(len(ssl.create_default_context().get_ca_certs()) > 0, socket.gethostbyname(\"localhost\"))'"
                 ).stdout.split()
    assert out == ["True", "127.0.0.1"], out
    assert docker("run", "--rm", "--entrypoint", "apt-get", BASE_IMAGE, "--version", check=False).returncode != 0


def test_app_api_and_web_on_a_user_network(res):
    require(APP_IMAGE)
    net = res.network()
    api = res.run("api", APP_IMAGE, "python3", "-m", "sampleapp.api",
                  opts=["--network", net, "--network-alias", "api", "-e", "NODE_NAME=node-a",
                        "-p", "127.0.0.1::8081"])
    web = res.run("web", APP_IMAGE,
                  opts=["--network", net, "-e", "NODE_NAME=node-b", "-e", "APP_VERSION=5",
                        "-p", "127.0.0.1::8080"])
    api_url = f"http://127.0.0.1:{host_port(api, 8081)}"
    web_url = f"http://127.0.0.1:{host_port(web, 8080)}"
    for base in (api_url, web_url):
        assert wait_for(lambda: http_get(base + "/healthz")[0] == 200, 20, base + "/healthz")
        assert http_get(base + "/readyz") == (200, "ready\n")

    api_host = docker("inspect", "-f", "{{.Config.Hostname}}", api).stdout.strip()
    web_host = docker("inspect", "-f", "{{.Config.Hostname}}", web).stdout.strip()
    code, body = http_get(web_url + "/whoami.json")
    assert code == 200, body
    data = json.loads(body)
    assert data["web"] == {"service": "web", "container": web_host, "node": "node-b", "version": "5"}
    assert data["api"] == {"service": "api", "container": api_host, "node": "node-a", "version": "1"}
    code, page = http_get(web_url + "/")
    assert code == 200 and api_host in page and web_host in page

    # the image HEALTHCHECK (probe on "auto" port) reports healthy for both services
    for c in (api, web):
        wait_for(lambda c=c: docker("inspect", "-f", "{{.State.Health.Status}}", c).stdout.strip() == "healthy",
                 30, f"{c} healthy")

    # api gone -> web answers 502 but stays ready; SIGTERM stops it promptly with exit 0
    docker("rm", "-f", api)
    assert http_get(web_url + "/whoami.json", timeout=5)[0] == 502
    assert http_get(web_url + "/readyz")[0] == 200
    t0 = time.monotonic()
    docker("stop", "-t", "10", web)
    assert time.monotonic() - t0 < 5
    assert docker("inspect", "-f", "{{.State.ExitCode}}", web).stdout.strip() == "0"
    assert "GET /whoami.json 502" in docker("logs", web).stdout


# --- registry -----------------------------------------------------------------------------

def tiny_image(res):
    """A one-file image imported from a tar made here (no other image needed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"hello {res.suffix}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    name = f"pst-tiny-{res.suffix}:1"
    docker("import", "-c", f"LABEL {TEST_LABEL}", "-", name, input=buf.getvalue())
    res.images.append(name)
    return name


def start_registry(res, network=None):
    opts = ["-p", "127.0.0.1::5000"] + (["--network", network] if network else [])
    reg = res.run("registry", REGISTRY_IMAGE, opts=opts)
    port = host_port(reg, 5000)
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/v2/")[0] == 200, 20, "registry /v2/")
    return reg, port


def push_tiny(res, port):
    src = tiny_image(res)
    ref = f"127.0.0.1:{port}/pst-tiny-{res.suffix}:1"
    docker("tag", src, ref)
    res.images.append(ref)
    docker("push", ref)
    return src, ref


def test_registry_accepts_push_and_serves_pull(res):
    require(REGISTRY_IMAGE)
    _, port = start_registry(res)
    src, ref = push_tiny(res, port)
    code, body = http_get(f"http://127.0.0.1:{port}/v2/pst-tiny-{res.suffix}/tags/list")
    assert code == 200 and json.loads(body)["tags"] == ["1"]
    docker("rmi", ref)
    docker("pull", ref)
    assert docker("image", "inspect", "-f", "{{.Id}}", ref).stdout == docker("image", "inspect", "-f", "{{.Id}}", src).stdout


def test_node_pulls_from_registry_over_user_network(res):
    require(REGISTRY_IMAGE, NODE_IMAGE)
    net = res.network()
    reg, port = start_registry(res, network=net)
    _, ref = push_tiny(res, port)
    reg_ip = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}', reg).stdout.strip()
    node = start_node(res, f"--insecure-registry={reg_ip}:5000", network=net)
    inner = f"{reg_ip}:5000/pst-tiny-{res.suffix}:1"
    docker("exec", node, "docker", "pull", inner, timeout=120)
    tags = docker("exec", node, "docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert inner in tags

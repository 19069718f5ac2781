"""The end of the end-to-end run: the first `up` printed no warning, a converged stack re-applies and
refreshes as a no-op, a node stopped by hand is restarted (not replaced) by `up --refresh`, workers
join and leave, and destroy leaves nothing.

Runs last (scripts/test.sh orders tests/e2e after the infra tests and drills), against the stack that
scripts/e2e.sh brought up with `pulumi up`; skips when the cluster came from the harness instead.
"""
import functools
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

STACK = os.environ.get("PHOENIX_STACK", "ci")
UP_LOG = Path(__file__).resolve().parents[2] / "build" / f"e2e-up-{STACK}.log"
"""What scripts/e2e.sh up printed."""
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    os.environ.get("PHOENIX_LIVE") != "pulumi",
    reason="no stack brought up by `pulumi up` (PHOENIX_LIVE is not 'pulumi'; scripts/test.sh sets it "
           "when the Pulumi toolchain is complete, see the set-up summary)")]


def pulumi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pulumi", *args, "--stack", STACK], capture_output=True, text=True, timeout=900)


def labelled(kind: str) -> list[str]:
    listing = subprocess.run(["docker", kind, "ls", *(["-a"] if kind == "container" else []), "-q",
                              "--filter", f"label=io.phoenix.stack={STACK}"], capture_output=True, text=True)
    return listing.stdout.split()


# pulumi-kubernetes narrates what it waits for on the resource's own status line while it creates or
# updates it ("creating (11s) warning: [MinimumReplicasUnavailable] ...", "[Pod ...]: containers with
# unready status"): pods that are still starting. The interactive display shows these in the status
# column until the step ends; they never reach the diagnostics. Any other warning counts.
AWAIT_PROGRESS = re.compile(r"^\s*[+~-]*\s*kubernetes:\S+ \S+ (creating|updating|replacing) \([\d.]+s\) warning: ")


def warnings(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if re.search(r"\bwarning\b", line, re.I) and not AWAIT_PROGRESS.search(line.rstrip())]


def test_a_healthy_up_prints_no_warning():
    assert UP_LOG.is_file(), f"{UP_LOG} missing: scripts/e2e.sh up writes it"
    assert warnings(UP_LOG.read_text()) == []


def test_re_applying_the_converged_stack_changes_nothing():
    done = pulumi("up", "--yes", "--expect-no-changes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert warnings(done.stdout + done.stderr) == []


def test_a_refresh_finds_nothing_to_change():
    # The drills (run before, on this stack) changed services by hand, as a user may: `up --refresh`
    # puts the stack's own values back. After that, what the providers read back must match what the
    # program sends, or every refresh would plan changes (replacements, for node containers).
    # The stop-worker drill may leave pods still starting: a refresh meanwhile reads them as unhealthy.
    assert healed(300), f"the cluster did not heal in 300 s after the drills: {cluster_nodes()}"
    converged = pulumi("up", "--refresh", "--yes", "--skip-preview")
    assert converged.returncode == 0, converged.stdout[-4000:] + converged.stderr[-2000:]
    assert healed(180), f"the cluster did not heal in 180 s after `up --refresh`: {cluster_nodes()}"
    done = pulumi("preview", "--refresh", "--expect-no-changes", "--diff")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def container(name: str) -> tuple[str, bool]:
    out = subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{.State.Running}}", name],
                         capture_output=True, text=True, timeout=60).stdout.split()
    return out[0], out[1] == "true"


def test_a_node_stopped_by_hand_is_restarted_by_up_refresh_not_replaced():
    node = f"{STACK}-w1"
    before, _ = container(node)
    subprocess.run(["docker", "stop", node], check=True, capture_output=True, timeout=120)
    done = pulumi("up", "--refresh", "--yes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert container(node) == (before, True), f"{node} was replaced or not started"
    assert not re.search(r"\d+ (to )?replaced?", done.stdout), done.stdout[-3000:]
    # The restarted node's pods start again on their own (Kubernetes); a refresh meanwhile would read
    # their Deployments as unavailable. Once the cluster has healed, a refresh finds nothing to do.
    assert healed(180), f"the cluster did not heal in 180 s after {node} came back: {cluster_nodes()}"
    again = pulumi("preview", "--refresh", "--expect-no-changes", "--diff")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]


KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]


@functools.cache
def orchestrator() -> str:
    """The stack's orchestrator: asked of Pulumi once (the polls in healed() would ask every 2 s)."""
    return pulumi("config", "get", "phoenix:orchestrator").stdout.strip() or "swarm"


STEADY_S = 10
"""How long the healed state must hold: a kubelet that comes back restarts the containers its pods lost
with the node, and until it has, pods the API still lists as Ready go unready one after another."""


def healed(timeout: int) -> bool:
    """Every node Ready and (Kubernetes) the app settled, for STEADY_S in a row, within `timeout` s."""
    deadline = time.monotonic() + timeout
    since = None
    while time.monotonic() < deadline:
        ok = all(line.endswith(" Ready") for line in cluster_nodes()) and (orchestrator() == "swarm" or app_settled())
        since = (since or time.monotonic()) if ok else None
        if since and time.monotonic() - since >= STEADY_S:
            return True
        time.sleep(2)
    return False


def app_settled() -> bool:
    """Every Deployment of the app at its full count, all of it updated, ready and available, and every
    pod of the app Ready and not being deleted: what a refresh reads as healthy."""
    listing = subprocess.run(["docker", "exec", f"{STACK}-m0", *KUBECTL, "get", "deployments,pods", "-n", "phoenix",
                              "-o", "json"], capture_output=True, text=True, timeout=60)
    if listing.returncode != 0:
        return False
    items = json.loads(listing.stdout)["items"]
    deployments = [i for i in items if i["kind"] == "Deployment"]
    pods = [i for i in items if i["kind"] == "Pod"
            and any(r.get("kind") == "ReplicaSet" for r in i["metadata"].get("ownerReferences", []))]
    full = all(d["status"].get(k, 0) == d["spec"]["replicas"] for d in deployments
               for k in ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas"))
    ready = all(not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])) for p in pods)
    return bool(deployments) and full and ready


def cluster_nodes() -> list[str]:
    """`NAME STATUS` of every node the orchestrator knows, asked on the first manager."""
    ask = {"swarm": ["docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}"],
           "kubeadm": [*KUBECTL, "get", "nodes", "--no-headers",
                       "-o", "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status"]}
    listing = subprocess.run(["docker", "exec", f"{STACK}-m0", *ask[orchestrator()]], capture_output=True, text=True,
                             timeout=60)
    assert listing.returncode == 0, listing.stderr
    return sorted(" ".join(line.split()).replace(" True", " Ready") for line in listing.stdout.splitlines())


def test_adding_a_worker_joins_it_and_removing_it_drains_it_out_of_the_cluster():
    workers = int(pulumi("config", "get", "phoenix:workers").stdout.strip() or 2)
    new = f"{STACK}-w{workers + 1}"
    # `up --config` saves the value (rewriting the whole stack file): the file is put back as it was.
    stack_file = Path(__file__).resolve().parents[2] / "stacks" / f"Pulumi.{STACK}.yaml"
    as_it_was = stack_file.read_text()
    try:
        done = pulumi("up", "--yes", "--skip-preview", "--config", f"phoenix:workers={workers + 1}")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert f"{new} Ready" in cluster_nodes()
    finally:
        done = pulumi("up", "--yes", "--skip-preview", "--config", f"phoenix:workers={workers}")
        stack_file.write_text(as_it_was)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not any(line.startswith(new + " ") for line in cluster_nodes()), "the removed worker is still in the cluster"
    assert labelled("container") and new not in subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()


def test_destroy_leaves_the_host_as_it_was():
    socket_dir = pulumi("config", "get", "phoenix:socketDir").stdout.strip() or "/tmp/phoenix"
    registry = pulumi("config", "get", "phoenix:registryPort").stdout.strip() or "5000"
    done = pulumi("destroy", "--yes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for kind in ("container", "network", "volume"):
        assert labelled(kind) == [], f"{kind}s with io.phoenix.stack={STACK} left behind"
    # Node directories are <stack>-m<N> and <stack>-w<N> (other stacks' names may start like this one's).
    left = [p.name for p in Path(socket_dir).glob(f"{STACK}-*") if re.fullmatch(rf"{re.escape(STACK)}-[mw]\d+", p.name)]
    assert left == [], f"node directories left in {socket_dir}: {left}"
    tags = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                          text=True, timeout=60).stdout.split()
    assert [t for t in tags if t.startswith(f"127.0.0.1:{registry}/")] == [], "pushed app image tags left"

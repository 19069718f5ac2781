"""The live Kubernetes cluster (k3s or kubeadm) the infra tests look at, and its API through kubectl.

Which stack: PHOENIX_OUTPUTS / PHOENIX_STACK (tests/infra/stack.py) when they name a Kubernetes
cluster (output `orchestrator` k3s or kubeadm), else the first of $PHOENIX_K8S_STACKS (default
`local-kubeadm,local-k3s`) whose `pulumi stack output --json` has nodes. The API is read from this
machine with the pinned kubectl and the stack's admin kubeconfig in a 0600 file
(scripts/k8s_state.KubeTarget says where the kubeconfig comes from). Without a live cluster or
without kubectl every test skips, saying why.
"""
from __future__ import annotations

import os
import shutil
from functools import lru_cache

from scripts.k8s_state import KubeTarget, kubectl_missing
from tests.infra import stack

ORCHESTRATORS = ("k3s", "kubeadm")
STACKS = [s for s in os.environ.get("PHOENIX_K8S_STACKS", "local-kubeadm,local-k3s").split(",") if s]


@lru_cache(maxsize=None)
def live() -> tuple[dict, str, str]:
    """(outputs, stack name or '', '') of a live Kubernetes cluster, or ({}, '', why there is none)."""
    values, why = stack.outputs()
    if not why and values.get("orchestrator") in ORCHESTRATORS:
        return values, "" if os.environ.get("PHOENIX_OUTPUTS") else os.environ.get("PHOENIX_STACK", "local"), ""
    if os.environ.get("PHOENIX_OUTPUTS"):
        return {}, "", (f"no Kubernetes stack: {why}" if why else
                        f"PHOENIX_OUTPUTS names a {values.get('orchestrator', 'swarm')} cluster, not Kubernetes")
    if shutil.which("pulumi") is None:
        return {}, "", (f"no Kubernetes stack is up: the pulumi CLI is not on PATH to read {' or '.join(STACKS)} "
                        "(or set PHOENIX_OUTPUTS to a Kubernetes stack's outputs)")
    reasons = []
    for name in STACKS:
        values, why = stack.stack_outputs(name)
        if not why and values.get("orchestrator") not in ORCHESTRATORS:
            why = f"stack {name} runs {values.get('orchestrator', 'swarm')}, not Kubernetes"
        if not why:
            return values, name, ""
        reasons.append(why)
    return {}, "", "no Kubernetes stack is up: " + "; ".join(reasons)


def skip_reason() -> str:
    return live()[2] or kubectl_missing()


def nodes(role: str | None = None) -> list[dict]:
    return [n for n in live()[0].get("nodes", []) if role is None or n["role"] == role]


def hosts(role: str | None = None) -> list[str]:
    """testinfra host specs of the cluster's nodes (['local://'] when there is none: tests skip)."""
    return [n.get("uri") or f"docker://{n['name']}" for n in nodes(role)] or ["local://"]


def role_of(host) -> str:
    """The stack's role of a testinfra host (named by container name, docker://, or address, ssh://)."""
    name = host.backend.get_hostname()
    return next(n["role"] for n in nodes() if name in (n["name"], n.get("address")))


def target() -> KubeTarget:
    values, name, _ = live()
    return KubeTarget(name or "file", "pulumi" if name else "file", values)


def processes(host) -> list[tuple[str, str]]:
    """(comm, command line) of every process, from /proc (node images need not have ps)."""
    out = host.check_output("for p in /proc/[0-9]*; do printf '%s|' \"$(cat $p/comm 2>/dev/null)\"; "
                            "tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done")
    return [tuple(line.split("|", 1)) for line in out.splitlines() if "|" in line]


def listening(host, port: int) -> bool:
    """A TCP listener on `port` (from /proc/net: node images need have neither ss nor netstat)."""
    table = host.run("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null").stdout.splitlines()
    return any(f":{port:04X}" == line.split()[1][-5:] and line.split()[3] == "0A"
               for line in table if len(line.split()) > 3 and ":" in line.split()[1])

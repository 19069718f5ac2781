"""The live cluster the infra tests look at: a Pulumi stack's outputs, or a harness cluster's.

- PHOENIX_OUTPUTS=path/to/outputs.json: outputs written by the harness (tests.integration.local_swarm)
  or saved from `pulumi stack output --json`;
- else PHOENIX_STACK=NAME (default: local): `pulumi stack output --json --stack NAME`.
Nodes become testinfra hosts: `docker://NAME` for container nodes, or the node's `uri` output
(ssh://user@address:port) for hosts and VMs, reached with pytest's `--ssh-config` (known host keys,
the key) when given.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def outputs() -> tuple[dict, str]:
    """(outputs, '') for a live cluster, or ({}, why there is none)."""
    path = os.environ.get("PHOENIX_OUTPUTS")
    if path:
        if not Path(path).is_file():
            return {}, f"PHOENIX_OUTPUTS={path} does not exist"
        return json.loads(Path(path).read_text()), ""
    stack = os.environ.get("PHOENIX_STACK", "local")
    if shutil.which("pulumi") is None:
        return {}, ("no live cluster: the pulumi CLI is not on PATH (scripts/toolchain.sh builds it; "
                    "or set PHOENIX_OUTPUTS to a harness cluster's outputs)")
    values, why = stack_outputs(stack)
    return values, f"no live cluster: {why}" if why else ""


def stack_outputs(stack: str) -> tuple[dict, str]:
    """(outputs, '') of a Pulumi stack with nodes, or ({}, why not)."""
    done = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {}, f"`pulumi stack output --stack {stack}` failed: {done.stderr.strip()[:200]}"
    values = json.loads(done.stdout or "{}")
    if not values.get("nodes"):
        return {}, f"stack {stack} has no nodes output (run `make up STACK={stack}`)"
    return values, ""


def nodes(role: str | None = None, orchestrator: str = "swarm") -> list[dict]:
    values, _ = outputs()
    if values.get("orchestrator", "swarm") != orchestrator:
        return []
    return [n for n in values.get("nodes", []) if role is None or n["role"] == role]


def hosts(role: str | None = None, orchestrator: str = "swarm") -> list[str]:
    """testinfra host specs of the live cluster's nodes (['local://'] when there is none: tests skip)."""
    found = [n.get("uri") or f"docker://{n['name']}" for n in nodes(role, orchestrator)]
    return found or ["local://"]


def node_host(config, node: dict):
    """The testinfra host of one node; ssh:// nodes get the run's --ssh-config and --ssh-identity-file
    (testinfra applies them to the hosts it parametrizes, not to get_host)."""
    import testinfra
    return testinfra.get_host(node.get("uri") or f"docker://{node['name']}", ssh_config=config.option.ssh_config,
                              ssh_identity_file=config.option.ssh_identity_file)


def skip_reason(orchestrator: str = "swarm") -> str:
    values, why = outputs()
    if why:
        return why
    if values.get("orchestrator", "swarm") != orchestrator:
        return f"the live cluster runs {values.get('orchestrator')}, not {orchestrator}"
    return ""

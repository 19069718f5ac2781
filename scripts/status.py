#!/usr/bin/env python3
"""The cluster at a glance: nodes (role, state), services (running/desired, health) and the last
phoenix action, for the stack named by STACK (pulumi outputs) or a harness cluster of that name.

    STACK=local .venv/bin/python scripts/status.py        (make status STACK=local)
    .venv/bin/python scripts/status.py --stack pxt --json

Swarm on container nodes: read through `docker exec <first manager> ...` (scripts/swarm_state.py).
Kubernetes stacks (k3s, kubeadm): kubectl's views of nodes, the app's objects and the phoenix jobs,
through the stack's kubeconfig output.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.swarm_state import Target, resolve  # noqa: E402

COLOURS = {"ok": "32", "warn": "33", "bad": "31", "dim": "2"}


def paint(text: str, tone: str, enabled: bool) -> str:
    return f"\033[{COLOURS[tone]}m{text}\033[0m" if enabled else text


def service_health(s: dict) -> tuple[str, str]:
    update = s.get("update") or ""
    if update in ("updating", "rollback_started"):
        return ("rolling back" if update.startswith("rollback") else "updating"), "warn"
    if update in ("paused", "rollback_paused"):
        return f"update {update.replace('_', ' ')}", "bad"
    if s["running"] < s["desired"]:
        return ("down" if s["running"] == 0 else "degraded"), "bad"
    if update == "rollback_completed":
        return "healthy (rolled back)", "ok"
    return "healthy", "ok"


def entry_check(url: str) -> tuple[str, str]:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        return "not checked (not a loopback address)", "dim"
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/whoami.json", timeout=3) as r:
            body = json.loads(r.read())
        ms = (time.monotonic() - t0) * 1000
        return f"200 in {ms:.0f} ms (web {body['web']['container'][:12]} v{body['web']['version']} -> api {body['api']['container'][:12]})", "ok"
    except Exception as err:  # noqa: BLE001 - any failure is what the person should see
        return f"no answer: {err}", "bad"


def last_phoenix(target: Target, services: dict) -> tuple[str, str]:
    if "phoenix" not in services:
        return "off (no phoenix service)", "dim"
    lines = target.phoenix_log()
    actions = [l for l in lines if any(f" phoenix {e} " in l for e in ("replaced", "not-replaced", "replace", "error", "skip"))]
    if not actions:
        return "on, no action yet" + (f" ({lines[-1].split(' phoenix ', 1)[1]})" if lines else ""), "dim"
    last = actions[-1]
    when, rest = last.split(" phoenix ", 1)
    replaced = sum(" phoenix replaced " in l for l in lines)
    tone = "bad" if rest.startswith(("error", "not-replaced")) else "ok"
    return f"{when} {rest}  [{replaced} replaced in the last {len(lines)} log lines]", tone


def collect(target: Target) -> dict:
    state = target.state()
    return {"stack": target.stack, "source": target.source, "orchestrator": target.orchestrator,
            "appUrl": target.app_url, "nodes": state["nodes"], "services": state["services"]}


def render(target: Target, data: dict, colour: bool) -> str:
    out = [f"stack {data['stack']} ({data['source']}) - {data['orchestrator']} - manager {target.manager}"]
    text, tone = entry_check(data["appUrl"]) if data["appUrl"] else ("no appUrl output", "dim")
    out.append(f"entry  {data['appUrl']}  {paint(text, tone, colour)}")
    out.append("")
    out.append("NODES")
    for n in sorted(data["nodes"], key=lambda n: (n["role"] != "manager", n["hostname"])):
        tone = "ok" if n["state"] == "ready" and n["availability"] == "active" else "bad" if n["state"] != "ready" else "warn"
        role = n["role"] + (" (leader)" if n["leader"] else "")
        out.append(f"  {n['hostname']:<22} {role:<18} {paint(n['state'] + ' / ' + n['availability'], tone, colour)}")
    out.append("")
    out.append("SERVICES")
    for name, s in sorted(data["services"].items()):
        health, tone = service_health(s)
        where = sorted({t["node"] for t in s["tasks"] if t["state"] == "running" and t["desired"] == "running"})
        failed = sum(t["state"] in ("failed", "rejected") for t in s["tasks"])
        extra = f"  ({failed} failed task(s) in history)" if failed else ""
        out.append(f"  {name:<10} {s['running']}/{s['desired']:<3} {s['mode']:<10} {paint(health, tone, colour):<20}"
                   f" on {', '.join(where) or '-'}{extra}")
    out.append("")
    text, tone = last_phoenix(target, data["services"])
    out.append(f"PHOENIX  {paint(text, tone, colour)}")
    return "\n".join(out)


KUBECTL_VIEWS = (("get", "nodes", "-o", "wide"),
                 ("get", "deployments,hpa,pdb,pods", "-n", "phoenix", "-o", "wide"),
                 ("get", "cronjobs,jobs", "-n", "phoenix"))


def kubectl() -> str | None:
    """kubectl of the Kubernetes toolchain (the pinned release), else the one on PATH."""
    built = Path(os.environ.get("K8S_TOOLCHAIN_DIR", Path.home() / ".cache" / "k8s-airgap")) / "bin" / "kubectl"
    return str(built) if os.access(built, os.X_OK) else shutil.which("kubectl")


def kubernetes_status(stack: str) -> int:
    """Nodes, the app's objects and the phoenix jobs of a Kubernetes stack, through its kubeconfig
    output (a secret: it lives in a private temporary file for the duration of the calls)."""
    exe = kubectl()
    if exe is None:
        print("status: no kubectl (make k8s-toolchain builds it, or install one)", file=sys.stderr)
        return 1
    done = subprocess.run(["pulumi", "stack", "output", "kubeconfig", "--show-secrets", "--stack", stack],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not done.stdout.strip():
        print(f"status: stack {stack} has no kubeconfig output: {done.stderr.strip()[:200]}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as private:
        kubeconfig = Path(private) / "kubeconfig"
        kubeconfig.touch(mode=0o600)
        kubeconfig.write_text(done.stdout)
        rc = 0
        for view in KUBECTL_VIEWS:
            print(f"$ kubectl {' '.join(view)}")
            shown = subprocess.run([exe, "--kubeconfig", str(kubeconfig), *view], text=True, timeout=60)
            rc = rc or shown.returncode
            print()
    return rc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack_arg", nargs="?", metavar="STACK", help="stack name (default: $STACK, else local)")
    parser.add_argument("--stack", default=os.environ.get("STACK") or None, help="same as STACK")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        target = resolve(args.stack_arg or args.stack)
    except LookupError as err:
        print(f"status: {err}", file=sys.stderr)
        return 1
    if target.orchestrator != "swarm":
        return kubernetes_status(target.stack)
    data = collect(target)
    if args.json:
        data["phoenix"] = target.phoenix_log()[-20:]
        print(json.dumps(data, indent=2))
    else:
        print(render(target, data, colour=sys.stdout.isatty()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

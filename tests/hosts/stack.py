"""A Pulumi stack of substrate `ssh` on test machines (the bed's or the VMs), driven through the
real `pulumi` CLI.

A committed stack file (stacks/Pulumi.<template>.yaml) is a template. `pulumi` runs in a project
directory of the test's (the program's files linked, not copied) whose stacks/ holds the test's own
copy: the machines as hosts, the encryption salt `stack init` writes, the generated private key set as a
secret through stdin (never on a command line), under a generated passphrase (in the environment of
the pulumi processes only). Nothing in the repository changes. The state goes where
scripts/pulumi-env.sh says (the repo's .pulumi-state); the stack is removed again at the end.
Pulumi reaches the hosts with nothing of the test's but the key in the stack's config: no ssh_config,
agent or known_hosts of the test's (the Docker provider goes over mutual TLS, docs/vms.md).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("pulumi", "pulumi-language-python", "pulumi-resource-command", "pulumi-resource-docker")


def missing_toolchain() -> str:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"the Pulumi toolchain lacks {', '.join(missing)} (scripts/toolchain.sh; source scripts/pulumi-env.sh)"
    return ""


class PulumiError(AssertionError):
    pass


class HostsStack:
    """Stack `name` in `directory`/project, configured from stacks/Pulumi.<template>.yaml (default: the
    stack's own), authenticating with the private key in `key_file`; `directory` gets pulumi.log."""

    def __init__(self, name: str, directory: Path, key_file: Path, template: str | None = None):
        self.name, self.directory, self.key_file = name, directory, key_file
        self.template = ROOT / "stacks" / f"Pulumi.{template or name}.yaml"
        self.project = directory / "project"
        self.config_file = self.project / "stacks" / f"Pulumi.{name}.yaml"
        (self.project / "stacks").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "Pulumi.yaml", self.project / "Pulumi.yaml")
        for entry in ("__main__.py", "components", "images", ".venv"):
            link = self.project / entry
            if not link.is_symlink():
                link.symlink_to(ROOT / entry)
        self.env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24)}
        self.env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        self.env.pop("SSH_AUTH_SOCK", None)  # no agent to fall back on: the stack's key or nothing

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 1500) -> subprocess.CompletedProcess:
        done = subprocess.run(["pulumi", *args, "--stack", self.name], cwd=self.project, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        with open(self.directory / "pulumi.log", "a") as log:  # the whole output, for a failure's why
            log.write(f"$ pulumi {' '.join(args)}  -> {done.returncode}\n{done.stdout}{done.stderr}\n")
        if check and done.returncode != 0:
            raise PulumiError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}")
        return done

    def create(self, hosts: list[dict]) -> "HostsStack":
        """The stack with `hosts` and the key as phoenix:sshPrivateKey."""
        self.run("stack", "rm", "--yes", "--force", check=False)  # an interrupted run's
        self.config_file.unlink(missing_ok=True)
        self.run("stack", "init", "--secrets-provider", "passphrase")
        self.set_hosts(hosts)
        self.run("config", "set", "--secret", "phoenix:sshPrivateKey", stdin=self.key_file.read_text())
        return self

    def set_hosts(self, hosts: list[dict]) -> None:
        """phoenix:hosts in the stack's copy of the config (the template's other keys kept)."""
        current = yaml.safe_load(self.config_file.read_text()) if self.config_file.exists() else {}
        template = yaml.safe_load(self.template.read_text())
        config = {**template.get("config", {}), **(current or {}).get("config", {})}
        config["phoenix:hosts"] = hosts
        self.config_file.write_text(yaml.safe_dump({**(current or {}), "config": config}, sort_keys=False))

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        return self.run("up", "--yes", "--skip-preview", *extra)

    def outputs(self) -> dict:
        return json.loads(self.run("stack", "output", "--json").stdout or "{}")

    def destroy(self) -> list[str]:
        """`pulumi destroy`; returns what went wrong on the way (empty: a clean destroy).

        One known quirk of the Docker provider is retried: after removing a service it waits, on the
        manager's engine, at most the service's stop grace period (10 s) for each task container there
        to be removed; a busy host misses that, the destroy fails, and the service, gone from the swarm,
        stays in the state. `destroy --refresh` then drops it and goes on. Anything else fails.
        """
        first = self.run("destroy", "--yes", "--skip-preview", check=False)
        if first.returncode == 0:
            return []
        if "error on wait for container with ID" not in first.stdout + first.stderr:
            raise PulumiError(f"destroy failed:\n{first.stdout[-4000:]}\n{first.stderr[-3000:]}")
        self.run("destroy", "--yes", "--skip-preview", "--refresh")
        return ["the Docker provider's wait for a removed service's container timed out; destroy --refresh finished"]

    def remove(self) -> None:
        self.run("stack", "rm", "--yes", check=False)

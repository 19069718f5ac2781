"""`pulumi up` ends when the app answers (scripts/app_ready.py), not merely when its services exist.

The check is a local command on the Pulumi host, run after the app's resources. The script's text
goes to the interpreter on stdin, so the command's inputs name no path of this machine.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional, Sequence, TypedDict

import pulumi
from pulumi_command import local

SCRIPT = (Path(__file__).parent / "scripts" / "app_ready.py").read_text()


class AppReadyArgs(TypedDict):
    url: pulumi.Input[str]
    """The entry URL (appUrl)."""
    version: str
    """The app version the web service must report."""
    triggers: Sequence[pulumi.Input]
    """What changes the app (image, replicas, ...): the check runs again when one changes."""
    after: Sequence[pulumi.Resource]
    """The app's resources: the check starts once they exist."""
    timeout_s: float


class AppReady(pulumi.ComponentResource):
    """Waits until the entry URL answers from web and api; fails `pulumi up` with the reason if not."""

    def __init__(self, name: str, args: AppReadyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:apps:AppReady", name, None, opts)
        check = local.Command(
            f"{name}-check",
            create=pulumi.Output.from_input(args["url"]).apply(lambda url: '"${PULUMI_PYTHON_CMD:-python3}" - ' + shlex.join(
                [url, args["version"], f"{args['timeout_s']:g}"])),
            stdin=SCRIPT, triggers=[args["url"], args["version"], *args["triggers"]],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args["after"])))
        self.message = check.stdout
        """What the check printed: after how long the app answered."""
        self.register_outputs({"message": self.message})

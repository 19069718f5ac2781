"""What an orchestrator's `deploy` hands back to the Cluster."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi


@dataclass(frozen=True)
class Deployment:
    manager_address: pulumi.Input[str]
    """Address of the first manager / server as the nodes reach it."""
    secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Stack outputs that must stay secret (join tokens, kubeconfig)."""
    outputs: Mapping[str, pulumi.Input] = field(default_factory=dict)
    """Further plain stack outputs (e.g. the Kubernetes API URL)."""
    app: Sequence[pulumi.Resource] = ()
    """The app's resources: once they exist, the entry URL should answer."""

"""Where a node set gets the app images from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi


@dataclass(frozen=True)
class Registry:
    """An image registry serving the stack's nodes."""

    push: str
    """`host:port` the Pulumi host pushes to."""
    pull: str
    """`host:port` the nodes pull from (the same registry seen from the node network)."""
    ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """Resources to depend on before pushing."""

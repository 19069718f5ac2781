"""Nodes that are machines, not local containers: existing SSH hosts or Hetzner Cloud VMs.

`components/cluster.py` calls `host_nodes` for every substrate but `docker`; the result has `.nodes`
(managers first) and `.registry` (None: app images are streamed to each node over SSH).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

import pulumi

from components.config import ClusterConfig, ssh_private_key
from components.nodes.node import MachineNeeds

if TYPE_CHECKING:
    from components.nodes.cloud_vms import CloudVms
    from components.nodes.ssh_hosts import SshHosts


def host_nodes(cfg: ClusterConfig, orchestrator: MachineNeeds, opts: Optional[pulumi.ResourceOptions] = None,
               private_key: Optional[pulumi.Input[str]] = None) -> Union["SshHosts", "CloudVms"]:
    """The node set of substrate `ssh` (phoenix:hosts) or `cloud` (Hetzner VMs, then SSH hosts), made
    ready for `orchestrator` (its host prerequisites, its ports)."""
    key = private_key if private_key is not None else ssh_private_key()
    if cfg.substrate == "ssh":
        from components.nodes.ssh_hosts import SshHosts
        return SshHosts(cfg.stack, {"hosts": list(cfg.nodes.hosts), "orchestrator": orchestrator,
                                    "private_key": key}, opts)
    if cfg.substrate == "cloud":
        from components.nodes.cloud_vms import CloudVms
        return CloudVms(cfg.stack, {"config": cfg.nodes, "orchestrator": orchestrator,
                                    "published_port": cfg.app.published_port, "private_key": key,
                                    "labels": cfg.labels}, opts)
    raise ValueError(f"host_nodes: substrate {cfg.substrate!r} is not made of hosts (ssh or cloud)")

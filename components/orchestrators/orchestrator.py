"""What every orchestrator provides. One module per orchestrator in this package defines a subclass
and exports one instance as `ORCHESTRATOR`; the registry (`components.orchestrators`) finds it by the
module's name, which is the value of `phoenix:orchestrator`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

import pulumi

from components.apps.app_image import ImageLoader
from components.apps.spec import ServiceSpec
from components.config import ClusterConfig
from components.nodes.docker_nodes import NodeRuntime
from components.nodes.node import Node, Port

Complaint = Callable[[str, Any, str], None]
"""`bad(key, value, what would be valid)`: records one refused config value (key without the project prefix)."""


@dataclass(frozen=True)
class Deployment:
    """What an orchestrator's `deploy` hands back to the Cluster."""

    manager_address: pulumi.Input[str]
    """Address of the first manager / server as the nodes reach it."""
    secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Stack outputs that must stay secret (join tokens, kubeconfig)."""
    outputs: Mapping[str, pulumi.Input] = field(default_factory=dict)
    """Further plain stack outputs (e.g. the Kubernetes API URL)."""
    app: Sequence[pulumi.Resource] = ()
    """The app's resources: once they exist, the entry URL should answer."""


class Orchestrator(ABC):
    """An orchestrator: what the config, the substrates and the Cluster need of it.

    Subclasses set the class attributes below and implement `container_runtime` and `deploy`;
    `validate` is optional. Nothing here creates resources before `container_runtime`/`deploy` run,
    so the config can be validated without a Pulumi engine.
    """

    name: ClassVar[str]
    """The value of `phoenix:orchestrator` (the module's name)."""
    default_node_image: ClassVar[str]
    """Container-node image when `phoenix:nodeImage` is empty."""
    ports: ClassVar[Sequence[Port]]
    """Every port the nodes use: cloud firewalls open them, entry and registry ports must avoid them."""
    host_prerequisites: ClassVar[Sequence[str]]
    """What scripts/prepare.sh installs on SSH hosts and VMs before the bootstrap (`docker`), or ()."""
    prepare_input: ClassVar[str] = ""
    """What scripts/prepare.sh reads on stdin for the host prerequisites (kubeadm: containerd's configuration)."""
    image_loader: ClassVar[ImageLoader]
    """How the app image gets into a node's image store where there is no registry (hosts, VMs)."""
    config_keys: ClassVar[Sequence[str]] = ()
    """Stack keys (without the project prefix) that only this orchestrator reads: the config refuses
    them, set to anything but their default, under another orchestrator."""

    _REQUIRED: ClassVar[tuple[str, ...]] = ("name", "default_node_image", "ports", "host_prerequisites",
                                            "image_loader")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [a for a in cls._REQUIRED if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"orchestrator {cls.__name__} does not define {', '.join(missing)}")

    def validate(self, cfg: ClusterConfig, bad: Complaint) -> ClusterConfig:
        """Refuse config values this orchestrator cannot use (through `bad`); return the config to use
        (e.g. with the node image completed). Runs after the generic checks, before any resource."""
        return cfg

    @abstractmethod
    def container_runtime(self, cfg: ClusterConfig, opts: Optional[pulumi.ResourceOptions] = None) -> NodeRuntime:
        """What a container node runs (substrate docker): command, data directory, ports, files."""

    @abstractmethod
    def deploy(self, name: str, cfg: ClusterConfig, nodes: Sequence[Node], services: Sequence[ServiceSpec],
               image: pulumi.Input[str], opts: pulumi.ResourceOptions) -> Deployment:
        """The cluster formed on `nodes` (managers first) and the app's `services` running `image` on it."""

    def reserved_ports(self) -> set[int]:
        """Port numbers the entry and registry ports must not take."""
        return {n for p in self.ports for n in p.numbers}

"""The orchestrators, found by name: a module of this package that exports `ORCHESTRATOR` (an
`orchestrator.Orchestrator`) is the orchestrator of that name (swarm.py -> `swarm`). Adding one is
adding such a module. Other modules here are shared parts (orchestrator.py, kubernetes.py, ...).

Modules are imported only when asked for, so that `components.config` can use this registry at
validation time without import cycles.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.orchestrators.orchestrator import Orchestrator


class UnknownOrchestrator(KeyError):
    """No orchestrator module of that name; the message lists the valid names."""

    def __str__(self) -> str:
        return self.args[0]


def _module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg and not m.name.startswith("_"))


def _load(name: str) -> "Orchestrator | None":
    if name not in _module_names():
        return None
    found = getattr(importlib.import_module(f"{__name__}.{name}"), "ORCHESTRATOR", None)
    from components.orchestrators.orchestrator import Orchestrator
    if found is None:
        return None
    if not isinstance(found, Orchestrator) or found.name != name:
        raise TypeError(f"{__name__}.{name}.ORCHESTRATOR must be an Orchestrator named {name!r}, got {found!r}")
    return found


def names() -> list[str]:
    """Every orchestrator's name, sorted."""
    return [n for n in _module_names() if _load(n) is not None]


def get(name: str) -> "Orchestrator":
    """The orchestrator called `name`; UnknownOrchestrator (listing the valid names) if there is none."""
    found = _load(name) if isinstance(name, str) else None
    if found is None:
        raise UnknownOrchestrator(f"unknown orchestrator {name!r}: choose one of {', '.join(names())}")
    return found

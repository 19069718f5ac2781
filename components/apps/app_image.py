"""The sample app image: built on the Pulumi host, then made available to every node.

The tag is a hash of the image sources and the base image, so a code change is a new tag and a
rolling update, and an unchanged tree is no change at all. With a registry (container nodes) the
image is pushed once and nodes pull it by digest. Without one (SSH hosts, VMs) no node pulls it at
all: the archive (`docker save`) is streamed to each node through its Connection, into the image
store its orchestrator uses (`ImageLoader`: Docker's for Swarm, k3s's containerd for k3s), and
workloads name it as that store knows it (Swarm: the image ID, which no node resolves remotely).
Nothing is asked of Docker Hub, nothing is exposed on the hosts' network, no daemon is reconfigured;
the price is one copy of the archive per node and per app change. Each node's copy is a resource:
it checks the node holds the image and removes it when the node or the image leaves the stack.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NotRequired, Optional, Sequence, TypedDict

import pulumi
from pulumi_command import local

from components.nodes.node import Node
from components.nodes.registry import Registry

APP_SOURCES = Path(__file__).resolve().parents[2] / "images" / "app"
REPOSITORY = "phoenix/sample-app"


def source_hash(root: Path, *extra: str) -> str:
    """A stable hash of the files under `root` (caches excluded) and `extra` strings."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for value in extra:
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()[:12]


def pushed_digest(inspect_output: str, repository: str) -> str:
    """`sha256:...` of `repository` among the RepoDigests lines of `docker image inspect`."""
    for line in inspect_output.splitlines():
        if line.startswith(repository + "@"):
            return line.split("@", 1)[1].strip()
    raise ValueError(f"no digest of {repository} in the push output: {inspect_output!r}")


@dataclass(frozen=True)
class ImageLoader:
    """How an orchestrator takes an image onto a node without a registry (argv run on the node)."""

    load: Callable[[str], Sequence[str]]
    """For image `name`: reads its archive (`docker save`) on stdin; prints the reference workloads use."""
    check: Callable[[str], Sequence[str]]
    """For a printed reference: fails unless the node holds it; prints it."""
    remove: Callable[[str], Sequence[str]]
    """For a printed reference: removes it from the node (nothing to do when it is not there)."""


def same_everywhere(refs: Sequence[str], nodes: Sequence[str]) -> str:
    """The one reference every node printed for the image."""
    found = {ref.strip() for ref in refs}
    if len(found) != 1:
        raise ValueError(f"the app image loaded as different references on {', '.join(nodes)}: {sorted(found)}")
    return found.pop()


class AppImageArgs(TypedDict):
    base_image: str
    """FROM of the app image (python:3.12-slim online, local/python-base:bookworm air-gapped)."""
    registry: Optional[Registry]
    """The stack's registry, or None to load the image onto each node directly."""
    nodes: Sequence[Node]
    """Nodes that must hold the image when there is no registry."""
    loader: NotRequired[ImageLoader]
    """How the orchestrator stores the image on a node; needed when there is no registry."""


class AppImage(pulumi.ComponentResource):
    """The sample app image, available to every node; `ref` is its name as the nodes see it."""

    ref: pulumi.Output[str]

    def __init__(self, name: str, args: AppImageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("phoenix:apps:AppImage", name, None, opts)
        tag = source_hash(APP_SOURCES, args["base_image"])
        registry = args["registry"]
        local_ref = f"{registry.push}/{REPOSITORY}:{tag}" if registry else f"{REPOSITORY}:{tag}"
        build = shlex.join(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={args['base_image']}",
                            "-t", local_ref, str(APP_SOURCES)])
        if registry:
            # The digest the push recorded goes into the reference: Swarm pins services to it, so the
            # reference the program passes is the one the service reports back (no diff on re-apply).
            built = local.Command(
                f"{name}-build",
                create=f"{build} && docker push -q {shlex.quote(local_ref)} && "
                       f"docker image inspect -f '{{{{range .RepoDigests}}}}{{{{println .}}}}{{{{end}}}}' {shlex.quote(local_ref)}",
                # The tag names the stack's registry: only this stack made it, so destroy removes it
                # (the base image and any other tag of the user's stay).
                delete=f"docker image rm {shlex.quote(local_ref)} >/dev/null 2>&1 || true",
                triggers=[tag], opts=pulumi.ResourceOptions(parent=self, depends_on=list(registry.ready)))
            self.ref = built.stdout.apply(lambda out: f"{registry.pull}/{REPOSITORY}:{tag}@"
                                          + pushed_digest(out, f"{registry.push}/{REPOSITORY}"))
        else:
            loader = args["loader"]
            built = local.Command(f"{name}-build", create=build, triggers=[tag],
                                  opts=pulumi.ResourceOptions(parent=self))
            refs = []
            for node in args["nodes"]:
                load = node.connection.pipe(
                    f"{name}-load-{node.name}", f"docker save {shlex.quote(local_ref)}", loader.load(local_ref),
                    triggers=[tag, *([node.replace_key] if node.replace_key is not None else [])],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[built, *node.ready]))
                ref = load.stdout.apply(str.strip)
                # A new image is a new resource: the old one's delete removes the old image.
                held = node.run(f"{name}-on-{node.name}", ref.apply(loader.check), parent=self,
                                delete=ref.apply(loader.remove), triggers=[ref])
                refs.append(held.stdout)
            names = [node.name for node in args["nodes"]]
            self.ref = pulumi.Output.all(*refs).apply(lambda values: same_everywhere(values, names))
        self.register_outputs({"ref": self.ref})

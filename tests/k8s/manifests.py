"""What the Kubernetes stacks render, as plain manifests: the program run under the unit-test mocks.

The mocks see every resource's type token and inputs (wire names, camelCase, as the provider sends
them to the API server), so the objects can be checked against a real API server without the
pulumi-kubernetes plugin or a cluster: `manifest()` turns one recorded resource into the object
that would be applied, `render()` runs `__main__.py` for a stack file and returns them all.
"""
from __future__ import annotations

import hashlib
import json
import os
import runpy
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from unittest import mock

import pulumi
import yaml

from components.config import PROJECT, declared
from tests.unit.conftest import Mocks, fake_toolchain

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
STACKS = ROOT / "stacks"

_SECRET_KEY = "4dabf18193072939515e22adb298388d"   # pulumi.runtime.rpc._special_sig_key
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"   # pulumi.runtime.rpc._special_secret_sig
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN
SECRET_PLACEHOLDER = "mock-secret-value"
"""What a `secure:` value of a stack file becomes under mocks (there is no passphrase to decrypt it)."""


class NotAnObject(ValueError):
    """A `kubernetes:` resource that is not one API object (Helm release, YAML/kustomize group, patch)."""


def api_version_kind(type_token: str) -> tuple[str, str]:
    """`kubernetes:apps/v1:Deployment` -> ("apps/v1", "Deployment"); the core group has no prefix."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        raise NotAnObject(f"{type_token}: not a kubernetes:<group>/<version>:<Kind> type token")
    group, version = parts[1].rsplit("/", 1)
    kind = parts[2]
    # Helm releases and charts, YAML/kustomize groups, *Patch and *List types are not one object.
    if group in ("helm.sh", "yaml", "kustomize") or kind.endswith(("Patch", "List")):
        raise NotAnObject(f"{type_token}: {kind} is not a single API object")
    return (version if group == "core" else f"{group}/{version}"), kind


def plain(value: Any, where: str = "") -> Any:
    """Inputs as the provider would send them: secrets unwrapped, Pulumi's float numbers as integers
    where they are whole (the provider sends int fields as integers; kubectl happens to accept 8080.0,
    other clients need not). Unknowns are an error."""
    if isinstance(value, dict):
        if value.get(_SECRET_KEY) == _SECRET_SIG:
            return plain(value.get("value"), where)
        return {k: plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == _UNKNOWN:
        raise ValueError(f"{where.lstrip('.')}: unknown at render time")
    return value


def auto_name(resource_name: str) -> str:
    """The name pulumi-kubernetes gives an object without metadata.name: the resource name and a
    random 8-hex suffix (here a stable one)."""
    return f"{resource_name}-{hashlib.sha256(resource_name.encode()).hexdigest()[:8]}"


def manifest(type_token: str, resource_name: str, inputs: dict) -> dict:
    """The API object a `kubernetes:` resource stands for."""
    api_version, kind = api_version_kind(type_token)
    obj = plain(inputs)
    if obj.get("kind") is not None and (obj.get("apiVersion"), obj.get("kind")) != (api_version, kind):
        raise ValueError(f"{resource_name}: inputs say {obj.get('apiVersion')}/{obj.get('kind')}, "
                         f"the type token {type_token}")
    obj["apiVersion"], obj["kind"] = api_version, kind
    metadata = obj.setdefault("metadata", {})
    metadata.setdefault("name", auto_name(resource_name))
    return obj


@dataclass
class Rendered:
    objects: list[dict]
    """The API objects, namespaces first, in the order of registration otherwise."""
    skipped: list[str]
    """`kubernetes:` resources that are not single objects (NotAnObject reasons)."""


def stack_config(stack_file: Path) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as the engine passes it (structured values as JSON), and its secret keys."""
    raw = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    config, secrets = {}, []
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            value = SECRET_PLACEHOLDER
            secrets.append(key)
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config, secrets


def stack_name(stack_file: Path) -> str:
    return stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")


def kubernetes_stacks(directory: Path = STACKS) -> list[Path]:
    """Stack files whose orchestrator is not Swarm (the declared default when a stack does not say)."""
    default = declared()["orchestrator"]["default"]
    found = []
    for f in sorted(directory.glob("Pulumi.*.yaml")):
        config, _ = stack_config(f)
        if config.get(f"{PROJECT}:orchestrator", default) != "swarm":
            found.append(f)
    return found


def objects(resources: Iterable[pulumi.runtime.MockResourceArgs]) -> Rendered:
    found, skipped = [], []
    for r in resources:
        if not r.typ.startswith("kubernetes:"):
            continue
        try:
            found.append(manifest(r.typ, r.name, r.inputs))
        except NotAnObject as e:
            skipped.append(str(e))
    found.sort(key=lambda o: o["kind"] != "Namespace")   # stable: keeps the order within each part
    return Rendered(found, skipped)


def render(stack_file: Path, **overrides: Any) -> Rendered:
    """Run the program under mocks with the stack file's config (plus `overrides`, keys without the
    project prefix) and return the Kubernetes objects it declares."""
    config, secrets = stack_config(stack_file)
    if config.get(f"{PROJECT}:substrate") in ("ssh", "cloud"):
        # Templates of the hosts test bed: the test sets the key; the toolchain is the Pulumi host's.
        if f"{PROJECT}:sshPrivateKey" not in config:
            config[f"{PROJECT}:sshPrivateKey"] = SECRET_PLACEHOLDER
            secrets.append(f"{PROJECT}:sshPrivateKey")
        if config.get(f"{PROJECT}:orchestrator") == "kubeadm" and f"{PROJECT}:kubeadmToolchainDir" not in config:
            config[f"{PROJECT}:kubeadmToolchainDir"] = fake_toolchain(Path(tempfile.mkdtemp(prefix="phoenix-toolchain-")))
    for key, value in overrides.items():
        config[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack_name(stack_file), preview=False)
    pulumi.runtime.set_all_config(config, secrets)
    def program() -> None:
        runpy.run_path(str(PROGRAM))

    try:
        # Under mocks nothing is encrypted: the refusal of the public built-in passphrase (which `make
        # test` sources) for SSH and cloud stacks concerns real runs, not this one.
        with mock.patch.dict(os.environ, {"PULUMI_CONFIG_PASSPHRASE": "render-under-mocks"}):
            pulumi.runtime.test(program)()   # returns once every resource is registered
    finally:
        pulumi.runtime.set_all_config({}, [])
    return objects(mocks.resources)


WORKLOAD_TEMPLATES = {
    "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"), "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"), "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def pod_template(obj: dict) -> dict | None:
    """The pod template of a workload object (None for other kinds)."""
    path = WORKLOAD_TEMPLATES.get(obj["kind"])
    template = obj
    for key in path or ():
        template = template.get(key) or {}
    return template if path else None


def pod_of(obj: dict) -> dict:
    """The Pod a workload's controller would create from its template (for admission checks)."""
    template = pod_template(obj)
    meta = obj["metadata"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {**template.get("metadata", {}), "name": f"{meta['name']}-{obj['kind'].lower()}-pod",
                         **({"namespace": meta["namespace"]} if meta.get("namespace") else {})},
            "spec": template["spec"]}


def dangling_references(objs: list[dict]) -> list[str]:
    """References between rendered objects that point at nothing rendered: an autoscaler's target, an
    Ingress backend (service and port), a RoleBinding's Role and ServiceAccounts, a pod template's
    ServiceAccount, a Service or PodDisruptionBudget selector that selects no pod template."""
    def key(kind: str, ns: str | None, name: str) -> tuple:
        return kind, ns or "", name
    index = {key(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    pods = [(o["metadata"].get("namespace", ""), (pod_template(o).get("metadata") or {}).get("labels") or {}, o)
            for o in objs if pod_template(o) is not None]
    problems = []

    def where(o: dict) -> str:
        return f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}"

    def selects(ns: str, match: dict) -> bool:
        return any(pns == ns and match and all(labels.get(k) == v for k, v in match.items()) for pns, labels, _ in pods)

    for o in objs:
        ns, spec = o["metadata"].get("namespace", ""), o.get("spec") or {}
        if o["kind"] == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef", {})
            if key(ref.get("kind"), ns, ref.get("name")) not in index:
                problems.append(f"{where(o)}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not rendered")
        elif o["kind"] == "Ingress":
            backends = [p.get("backend", {}) for r in spec.get("rules", []) for p in (r.get("http") or {}).get("paths", [])]
            backends += [spec["defaultBackend"]] if spec.get("defaultBackend") else []
            for b in (b.get("service") for b in backends):
                if not b:
                    continue
                svc = index.get(key("Service", ns, b["name"]))
                port = b.get("port", {})
                if svc is None:
                    problems.append(f"{where(o)}: backend Service {b['name']} is not rendered")
                elif not any(port.get("number") == p.get("port") or (port.get("name") and port.get("name") == p.get("name"))
                             for p in (svc.get("spec") or {}).get("ports", [])):
                    problems.append(f"{where(o)}: Service {b['name']} has no port {port}")
        elif o["kind"] == "RoleBinding":
            ref = o.get("roleRef", {})
            if ref.get("kind") == "Role" and key("Role", ns, ref.get("name")) not in index:
                problems.append(f"{where(o)}: roleRef Role {ref.get('name')} is not rendered")
            for s in o.get("subjects", []):
                sns = s.get("namespace", ns)
                if s.get("kind") == "ServiceAccount" and s.get("name") != "default" \
                        and key("ServiceAccount", sns, s.get("name")) not in index:
                    problems.append(f"{where(o)}: subject ServiceAccount {sns}/{s.get('name')} is not rendered")
        elif o["kind"] in ("Service", "PodDisruptionBudget"):
            match = spec.get("selector") if o["kind"] == "Service" else (spec.get("selector") or {}).get("matchLabels")
            if match and not selects(ns, match):
                problems.append(f"{where(o)}: selector {match} selects no rendered pod template")
        template = pod_template(o)
        if template is not None:
            sa = (template.get("spec") or {}).get("serviceAccountName")
            if sa and sa != "default" and key("ServiceAccount", ns, sa) not in index:
                problems.append(f"{where(o)}: serviceAccountName {sa} is not rendered")
    return problems

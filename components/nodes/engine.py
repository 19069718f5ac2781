"""How Pulumi reaches the Docker Engine of an SSH host: mutual TLS through a gateway on the host.

The Docker provider's other remote transport, `ssh://`, runs the operator's own ssh client with its
keys, agent and known_hosts, and nothing of the stack's key could reach it, least of all at `pulumi
destroy`, when the program does not run and the provider is configured from the state alone. Over
TLS, the CA, the client certificate and its key are provider inputs, kept as secrets in the state.
A small gateway on the host (scripts/engine_gateway.py, installed over the verified SSH connection)
accepts only clients of the stack's CA and passes their connections to the engine's unix socket;
the provider checks the gateway's certificate against the same CA. docs/vms.md has the reasoning.
"""
from __future__ import annotations

import ipaddress
import json
import shlex
from pathlib import Path
from typing import Optional

import pulumi
from pulumi_command import local

from components.nodes.node import Connection, EngineTls

ENGINE_PORT = 2376
SCRIPTS = Path(__file__).parent / "scripts"
CERTS_SCRIPT = (SCRIPTS / "engine_certs.py").read_text()
GATEWAY_SCRIPT = (SCRIPTS / "engine_gateway.py").read_text()


def engine_url(address: pulumi.Input[str]) -> pulumi.Output[str]:
    """The Docker provider's host for the gateway at `address`."""
    def url(a: str) -> str:
        try:
            bracketed = f"[{a}]" if ipaddress.ip_address(a).version == 6 else a
        except ValueError:
            bracketed = a
        return f"tcp://{bracketed}:{ENGINE_PORT}"
    return pulumi.Output.from_input(address).apply(url)


def gateway_argv(*args: str) -> list[str]:
    """argv that runs one action of the gateway program on a host (its own text is its first argument)."""
    return ["python3", "-c", "import sys; exec(sys.argv[1])", GATEWAY_SCRIPT, *args]


def _certs(name: str, args: pulumi.Input[list[str]], stdin: Optional[pulumi.Input[str]],
           opts: pulumi.ResourceOptions, ignore_create: bool) -> pulumi.Output[dict]:
    command = local.Command(
        name, create=pulumi.Output.from_input(args).apply(lambda a: shlex.join(["python3", "-c", CERTS_SCRIPT, "engine-certs", *a])),
        stdin=stdin, logging=local.Logging.STDERR,
        # Made once: a changed script text must not make new keys (the CA above all).
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(
            additional_secret_outputs=["stdout"], ignore_changes=["create"] if ignore_create else None), opts))
    return pulumi.Output.secret(command.stdout.apply(json.loads))


def engine_ca(name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[dict]:
    """The stack's engine CA and the Docker provider's client certificate, made once, kept secret."""
    return _certs(name, ["ca"], None, opts, ignore_create=True)


def engine_gateway(name: str, connection: Connection, address: pulumi.Input[str], ca: pulumi.Output[dict],
                   triggers: list[pulumi.Input], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """A certificate for `address` signed by `ca`, and the gateway serving it, installed over `connection`.

    A new address makes a new certificate (the provider checks the address against it) and reinstalls.
    Deleting the resource stops the gateway and removes its files from the host.
    """
    server = _certs(f"{name}-cert", pulumi.Output.from_input(address).apply(lambda a: ["server", a]),
                    ca.apply(lambda c: json.dumps({"ca": c["ca"], "caKey": c["caKey"]})), opts, ignore_create=False)
    bundle = pulumi.Output.all(ca, server).apply(lambda v: v[0]["ca"] + v[1]["cert"] + v[1]["key"])
    return connection.command(name, gateway_argv("install", str(ENGINE_PORT)), stdin=pulumi.Output.secret(bundle),
                              delete=gateway_argv("remove"), triggers=triggers, opts=opts)


def client_tls(ca: pulumi.Output[dict]) -> EngineTls:
    """The Docker provider's side of `engine_ca`."""
    return EngineTls(ca=ca.apply(lambda c: c["ca"]), cert=ca.apply(lambda c: c["cert"]),
                     key=pulumi.Output.secret(ca.apply(lambda c: c["key"])))

"""Where machines come from: every substrate yields `Node` descriptions (see node.py)."""
from components.nodes.node import Connection, DockerExec, Node, Ssh, script_argv
from components.nodes.registry import Registry

__all__ = ["Connection", "DockerExec", "Node", "Registry", "Ssh", "script_argv"]

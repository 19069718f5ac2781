"""Orchestrator bootstrap on any node set: Swarm (swarm.py) and k3s (k3s.py)."""

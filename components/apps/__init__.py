"""The sample microservices: one definition (spec.py), rendered to Swarm or Kubernetes."""

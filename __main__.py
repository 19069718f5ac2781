"""The Pulumi program: stack config -> Cluster -> stack outputs. Everything else is in components/."""
import pulumi

from components.cluster import Cluster
from components.config import load

config = load()
cluster = Cluster("phoenix", {"config": config})

pulumi.export("appUrl", cluster.app_url)
pulumi.export("managerAddress", cluster.manager_address)
pulumi.export("orchestrator", config.orchestrator)
pulumi.export("nodes", [{"name": n.name, "role": n.role, "address": n.address, "uri": n.connection.uri}
                        for n in cluster.nodes])
for key, value in cluster.outputs.items():
    pulumi.export(key, value)
for key, value in cluster.secrets.items():
    pulumi.export(key, pulumi.Output.secret(value))

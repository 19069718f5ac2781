"""The cluster the drills run on, and where their records go.

PHOENIX_DRILL_STACK=NAME drills an existing cluster (a Pulumi stack's outputs when the CLI and the
stack exist, else the harness cluster of that name; see scripts/swarm_state.py). Under scripts/test.sh
(PHOENIX_LIVE=pulumi|harness) they drill its live cluster (PHOENIX_STACK / PHOENIX_OUTPUTS). Else a
fresh 1 manager + 2 workers harness cluster (tests.integration.local_swarm) is made and removed.
A Kubernetes cluster (outputs `orchestrator` k3s or kubeadm) is read through the pinned kubectl
(scripts/k8s_state.py): without it the drills skip, saying which build makes it.
The drills change the cluster: web ends on APP_VERSION drill-2, the stopped worker is started again.
"""
import os
import uuid

import pytest

from tests.integration.local_swarm import engine_problem


@pytest.fixture(scope="session")
def drill_target():
    from scripts.swarm_state import Target, resolve

    stack = os.environ.get("PHOENIX_DRILL_STACK")
    live = os.environ.get("PHOENIX_LIVE") in ("pulumi", "harness")
    if stack or live:
        if not stack:
            # scripts/test.sh's live cluster: PHOENIX_OUTPUTS (harness) or PHOENIX_STACK (pulumi).
            stack = None if os.environ.get("PHOENIX_OUTPUTS") else os.environ.get("PHOENIX_STACK")
        try:
            target = resolve(stack)
        except LookupError as err:
            pytest.skip(str(err))
        if target.orchestrator != "swarm":
            from scripts.k8s_state import kubectl_missing
            if kubectl_missing():
                pytest.skip(f"{target.stack} runs {target.orchestrator}: {kubectl_missing()}")
        yield target
        return
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    from tests.integration.local_swarm import LocalSwarm

    cluster = LocalSwarm(f"drill{uuid.uuid4().hex[:4]}", workers=2)
    try:
        cluster.start()
        cluster.bootstrap()
        cluster.deploy_app()
        cluster.wait_app()
        yield Target(cluster.stack, "harness", cluster.outputs())
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def drill_records():
    """Every drill appends its record; the session writes build/drills.json and prints one line each."""
    from tests.drills import drills

    records: list[dict] = []
    yield records
    if records:
        path = drills.write(records)
        print(f"\n{len(records)} drill record(s) in {path}")
        for rec in records:
            print(drills.line(rec))

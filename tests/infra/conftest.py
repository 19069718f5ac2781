"""Infra tests: testinfra against the nodes of a live cluster (see stack.py for which one)."""
import pytest

from tests.infra import stack


@pytest.fixture(scope="session")
def live():
    """The live cluster's outputs; skips with the reason there is none."""
    values, why = stack.outputs()
    if why:
        pytest.skip(why)
    return values


@pytest.fixture(scope="session")
def manager_host(live, request):
    return stack.node_host(request.config, stack.nodes("manager", live.get("orchestrator", "swarm"))[0])

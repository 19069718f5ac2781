"""Fixtures for tests that need a Docker engine: a live Swarm formed by the project's bootstrap."""
import uuid

import pytest

from tests.integration.local_swarm import LocalSwarm, engine_problem

PROBLEM = engine_problem()


@pytest.fixture(scope="module")
def local_swarm():
    """A fresh 1+2 Swarm of docker-in-docker nodes, removed afterwards (everything it labelled)."""
    if PROBLEM:
        pytest.skip(PROBLEM)
    cluster = LocalSwarm(f"it{uuid.uuid4().hex[:6]}", workers=2)
    try:
        cluster.start()
        cluster.bootstrap()
        yield cluster
    finally:
        cluster.down()

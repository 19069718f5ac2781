"""The entry URL, seen from the machine that runs Pulumi: it answers, from several containers, locally only."""
import json
import urllib.request

import pytest

from tests.infra import stack

testinfra_hosts = ["local://"]
pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(bool(stack.skip_reason()), reason=stack.skip_reason() or "-")]


def fetch(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_entry_url_answers_200_from_more_than_one_container(live):
    seen_web, seen_api = set(), set()
    for _ in range(30):
        status, body = fetch(live["appUrl"].rstrip("/") + "/whoami.json")
        assert status == 200
        seen_web.add(body["web"]["container"])
        seen_api.add(body["api"]["container"])
    assert len(seen_web) >= 2, f"only {seen_web} answered"
    assert len(seen_api) >= 2 or len(seen_api) == 1 and len(stack.nodes()) == 1


def test_published_ports_are_bound_to_loopback_only(host, live):
    if any(n.get("uri", "docker://").startswith("ssh://") for n in stack.nodes()):
        pytest.skip("nodes are hosts: their ports are the hosts' own, not published by Docker")
    for node in stack.nodes():
        mappings = host.check_output(f"docker port {node['name']}").splitlines()
        for line in mappings:
            assert "-> 127.0.0.1:" in line, f"{node['name']} publishes beyond loopback: {line}"

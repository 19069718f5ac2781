"""The status view's reading of a Swarm (scripts/swarm_state.summarise, scripts/status.py), without Docker."""
import json

from scripts import status
from scripts.swarm_state import Target, summarise

NODES = [
    {"ID": "n1", "Description": {"Hostname": "s-m0"}, "Spec": {"Role": "manager", "Availability": "active"},
     "Status": {"State": "ready"}, "ManagerStatus": {"Leader": True}},
    {"ID": "n2", "Description": {"Hostname": "s-w1"}, "Spec": {"Role": "worker", "Availability": "active",
                                                              "Labels": {"phoenix.node": "s-w1"}},
     "Status": {"State": "down"}},
]
SERVICES = [
    {"ID": "svc-web", "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}},
                               "TaskTemplate": {"ContainerSpec": {"Env": ["APP_VERSION=2"]}}},
     "UpdateStatus": {"State": "updating"}},
    {"ID": "svc-edge", "Spec": {"Name": "edge", "Mode": {"Global": {}}, "TaskTemplate": {"ContainerSpec": {}}}},
]


def task(i, service, node, state, desired="running"):
    return {"ID": i, "ServiceID": service, "NodeID": node, "DesiredState": desired, "CreatedAt": "2026-11-27T10:00:00Z",
            "Status": {"State": state, "ContainerStatus": {"ContainerID": "c" + i}}}


TASKS = [task("a", "svc-web", "n1", "running"), task("b", "svc-web", "n2", "running"),
         task("c", "svc-web", "n1", "starting"), task("d", "svc-web", "n1", "shutdown", "shutdown"),
         task("e", "svc-edge", "n1", "running")]


def test_running_counts_only_tasks_that_run_and_should():
    state = summarise(NODES, SERVICES, TASKS)
    web, edge = state["services"]["web"], state["services"]["edge"]
    assert (web["running"], web["desired"], web["update"]) == (2, 3, "updating")
    assert web["env"] == {"APP_VERSION": "2"} and web["constraints"] == []
    assert (edge["running"], edge["desired"], edge["mode"]) == (1, 1, "global")
    assert state["nodes"][0]["leader"] and state["nodes"][1]["state"] == "down"


def test_health_words():
    assert status.service_health({"update": "updating", "running": 2, "desired": 3})[0] == "updating"
    assert status.service_health({"update": None, "running": 2, "desired": 3}) == ("degraded", "bad")
    assert status.service_health({"update": None, "running": 0, "desired": 3}) == ("down", "bad")
    assert status.service_health({"update": "rollback_completed", "running": 3, "desired": 3})[1] == "ok"


def test_the_view_shows_nodes_services_and_the_last_phoenix_action(monkeypatch):
    target = Target("s", "harness", {"nodes": [{"name": "s-m0", "role": "manager"}], "appUrl": ""})
    data = {"stack": "s", "source": "harness", "orchestrator": "swarm", "appUrl": "",
            **summarise(NODES, SERVICES + [{"ID": "svc-px", "Spec": {"Name": "phoenix", "Mode": {"Replicated": {"Replicas": 1}},
                                                                       "TaskTemplate": {"ContainerSpec": {}}}}], TASKS)}
    monkeypatch.setattr(Target, "phoenix_log", lambda self, tail=200: [
        "2026-11-27T10:00:00Z phoenix replace service=web task=a node=s-m0",
        "2026-11-27T10:00:15Z phoenix replaced service=web old=a new=f node=s-m0 outcome=completed seconds=15.0"])
    text = status.render(target, data, colour=False)
    assert "s-m0" in text and "manager (leader)" in text and "down / active" in text
    assert "web        2/3" in text and "updating" in text
    assert "PHOENIX  2026-11-27T10:00:15Z replaced service=web old=a new=f" in text
    assert json.dumps(data)  # --json prints the same data

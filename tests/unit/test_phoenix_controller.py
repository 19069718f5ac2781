"""The phoenix controller's decisions and its conversation with the Swarm / Kubernetes APIs, without
Docker: a fake Swarm answers the Engine API calls the controller makes and reacts as swarmkit does
(a placement-only constraint makes dirty only the tasks on nodes that no longer satisfy it; a pending
replacement is placed on an active node that satisfies the constraints)."""
import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "images" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from sampleapp import phoenix as px  # noqa: E402

T0 = "2026-11-27T10:00:00.000000000Z"


def ts(seconds: int) -> str:
    return f"2026-11-27T10:{seconds // 60:02d}:{seconds % 60:02d}.123456789Z"


def node(i, hostname, availability="active", state="ready", labels=None):
    return {"ID": i, "Version": {"Index": 1}, "Description": {"Hostname": hostname},
            "Spec": {"Role": "worker", "Availability": availability, "Labels": dict(labels or {})},
            "Status": {"State": state}}


def task(i, node_id, created, state="running", desired="running", spec=None):
    return {"ID": i, "NodeID": node_id, "CreatedAt": created, "DesiredState": desired,
            "Status": {"State": state, "ContainerStatus": {"ContainerID": f"c-{i}"}},
            "Spec": spec or {"Placement": {"Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.phoenix.node"}}]}}}


def service(name="web", replicas=3, update_state=None, constraints=None):
    placement = {"Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.phoenix.node"}}]}
    if constraints:
        placement["Constraints"] = list(constraints)
    s = {"ID": f"svc-{name}", "Version": {"Index": 10},
         "Spec": {"Name": name, "Mode": {"Replicated": {"Replicas": replicas}},
                  "TaskTemplate": {"ContainerSpec": {"Image": "reg/app:1"}, "Placement": placement}}}
    if update_state:
        s["UpdateStatus"] = {"State": update_state}
    return s


def matches(n, constraint_list):
    for c in constraint_list:
        m = re.match(r"node\.labels\.([\w.]+)!=(.*)", c)
        if m and n["Spec"]["Labels"].get(m.group(1)) == m.group(2):
            return False
    return True


class FakeSwarm:
    """Enough of the Engine API for the controller, with swarmkit's reactions to its writes."""

    def __init__(self, nodes, services, tasks):
        self.nodes = {n["ID"]: n for n in nodes}
        self.services = {s["Spec"]["Name"]: s for s in services}
        self.tasks = list(tasks)
        self.calls = []
        self.availability_log = []   # (node, availability) in write order
        self.conflicts = 0
        self.counter = 0

    # -- reads
    def get(self, path):
        self.calls.append(("GET", path))
        self.progress()
        if path.startswith("/services?"):
            name = json.loads(unquote(path.split("filters=")[1]))["name"][0]
            return [s for n, s in self.services.items() if n.startswith(name)]
        if path.startswith("/tasks?"):
            name = json.loads(unquote(path.split("filters=")[1]))["service"][0]
            sid = self.services[name]["ID"]
            return [t for t in self.tasks if t.get("ServiceID", sid) == sid and t.get("_service", name) == name]
        if path == "/nodes":
            return list(self.nodes.values())
        if path.startswith("/nodes/"):
            return self.nodes[path.split("/")[2]]
        raise AssertionError(path)

    # -- writes
    def post(self, path, body=None, ok=None):
        self.calls.append(("POST", path, body))
        version = int(path.split("version=")[1])
        if self.conflicts:
            self.conflicts -= 1
            raise px.ApiError(500, "rpc error: code = Unknown desc = update out of sequence")
        kind, ident = path.split("/")[1:3]
        if kind == "nodes":
            n = self.nodes[ident]
            assert version == n["Version"]["Index"]
            n["Spec"], n["Version"]["Index"] = body, version + 1
            self.availability_log.append((n["Description"]["Hostname"], body["Availability"]))
            return None
        s = next(s for s in self.services.values() if s["ID"] == ident)
        assert version == s["Version"]["Index"]
        old_constraints = px.constraints(s["Spec"])
        s["Spec"], s["Version"]["Index"] = body, version + 1
        new_constraints = px.constraints(body)
        placement_only = px.with_constraints(body, old_constraints) == px.with_constraints(s["Spec"], old_constraints)
        assert placement_only, "the controller changed more than placement constraints"
        dirty = [t for t in self.tasks if t.get("_service", "web") == body["Name"] and px.task_running(t)
                 and not matches(self.nodes[t["NodeID"]], new_constraints)]
        for t in dirty:
            self.counter += 1
            self.tasks.append(task(f"new{self.counter}", "", ts(600), state="pending", spec=body["TaskTemplate"])
                              | {"_service": body["Name"], "_replaces": t["ID"]})
        s["UpdateStatus"] = {"State": "updating"} if dirty else {"State": "completed"}
        return None

    def progress(self):
        """Scheduler and updater: place pending tasks, then finish the update (replacement up, old down)."""
        for t in self.tasks:
            if t["Status"]["State"] == "pending":
                eligible = [n for n in self.nodes.values() if n["Spec"]["Availability"] == "active"
                            and matches(n, px.constraints({"TaskTemplate": t["Spec"]}))]
                if eligible:
                    t["NodeID"] = eligible[0]["ID"]
                    t["Status"]["State"] = "assigned"
            elif t["Status"]["State"] == "assigned":
                t["Status"]["State"] = "running"
                old = next(o for o in self.tasks if o["ID"] == t["_replaces"])
                old["DesiredState"], old["Status"]["State"] = "shutdown", "shutdown"
                if not any(o["Status"]["State"] in ("pending", "assigned") for o in self.tasks):
                    for s in self.services.values():
                        if (s.get("UpdateStatus") or {}).get("State") == "updating":
                            s["UpdateStatus"] = {"State": "completed"}


@pytest.fixture
def cluster():
    nodes = [node("n-m0", "m0"), node("n-w1", "w1"), node("n-w2", "w2")]
    tasks = [task("t-old", "n-w1", ts(10)), task("t-mid", "n-m0", ts(20)), task("t-new", "n-w2", ts(30))]
    return FakeSwarm(nodes, [service()], tasks)


def controller(fake, services=("web",), **kw):
    return px.SwarmPhoenix(fake, list(services), 10, sleep=lambda s: None, poll=0, **kw)


# --- decisions -------------------------------------------------------------------------------------------
def test_the_oldest_running_task_is_chosen_and_every_other_active_node_is_paused(cluster):
    plan = px.plan_round(cluster.services["web"], cluster.tasks, list(cluster.nodes.values()))
    assert isinstance(plan, px.Plan)
    assert plan.victim["ID"] == "t-old" and plan.node_id == "n-w1" and plan.colocated == ()
    assert sorted(plan.pause) == ["n-m0", "n-w2"]


@pytest.mark.parametrize("change, reason", [
    (lambda c: c.tasks.pop(), "2/3 running"),
    (lambda c: c.tasks.append(task("t-start", "n-w2", ts(40), state="starting")), "not at full health"),
    (lambda c: c.services["web"].update(UpdateStatus={"State": "updating"}), "rollout is not finished"),
    (lambda c: c.services["web"].update(UpdateStatus={"State": "rollback_paused"}), "rollout is not finished"),
    (lambda c: c.services["web"]["Spec"].update(Mode={"Global": {}}), "not a replicated service"),
    (lambda c: c.services["web"]["Spec"]["TaskTemplate"]["Placement"].update(
        Constraints=["node.labels.phoenix.rotate!=1-x"]), "round is still open"),
])
def test_no_round_unless_the_service_is_at_full_health_and_idle(cluster, change, reason):
    change(cluster)
    plan = px.plan_round(cluster.services["web"], cluster.tasks, list(cluster.nodes.values()))
    assert isinstance(plan, px.Skip) and reason in plan.reason


def test_tasks_on_paused_drained_or_down_nodes_are_not_victims(cluster):
    cluster.nodes["n-w1"]["Spec"]["Availability"] = "drain"
    cluster.nodes["n-m0"]["Status"]["State"] = "down"
    plan = px.plan_round(cluster.services["web"], cluster.tasks, list(cluster.nodes.values()))
    assert plan.victim["ID"] == "t-new"
    assert plan.pause == ("n-m0",)  # only active nodes are paused (and later resumed)


def test_tasks_sharing_the_victims_node_are_reported():
    nodes = [node("a", "a"), node("b", "b")]
    tasks = [task("t1", "a", ts(1)), task("t2", "a", ts(5)), task("t3", "b", ts(3))]
    plan = px.plan_round(service(replicas=3), tasks, nodes)
    assert plan.victim["ID"] == "t1" and [t["ID"] for t in plan.colocated] == ["t2"]


def test_constraint_edits_touch_nothing_else():
    spec = service(constraints=["node.role==worker"])["Spec"]
    added = px.with_constraints(spec, [*px.constraints(spec), px.rotate_constraint("r1")])
    assert px.constraints(added) == ["node.role==worker", "node.labels.phoenix.rotate!=r1"]
    restored = px.without_phoenix_constraints(added)
    assert restored == spec and px.without_phoenix_constraints(spec) is None
    bare = service()["Spec"]
    assert px.without_phoenix_constraints(px.with_constraints(bare, [px.rotate_constraint("r")])) == bare


# --- one round against the fake Swarm ------------------------------------------------------------------
def test_a_round_replaces_exactly_the_oldest_task_on_its_own_node_and_leaves_no_mark(cluster, capsys):
    before = json.loads(json.dumps(cluster.services["web"]["Spec"]))
    controller(cluster).tick()

    running = {t["ID"]: t["NodeID"] for t in cluster.tasks if px.task_running(t)}
    assert set(running) == {"t-mid", "t-new", "new1"}, "exactly one task replaced"
    assert running["new1"] == "n-w1", "the replacement runs on the victim's node: the spread is kept"
    assert cluster.services["web"]["Spec"] == before, "constraint removed, spec as before"
    for n in cluster.nodes.values():
        assert n["Spec"]["Availability"] == "active" and not n["Spec"]["Labels"]
    # The other nodes were paused before the service changed and resumed after the placement.
    assert cluster.availability_log[:2] == [("m0", "pause"), ("w2", "pause")]
    assert sorted(cluster.availability_log[-2:]) == [("m0", "active"), ("w2", "active")]
    service_writes = [c for c in cluster.calls if c[0] == "POST" and c[1].startswith("/services/")]
    assert len(service_writes) == 2  # add the constraint, remove it

    lines = capsys.readouterr().out.splitlines()
    assert any(" phoenix replace service=web task=t-old " in l and "node=w1" in l for l in lines), lines
    assert any(" phoenix replaced service=web old=t-old new=new1 node=w1 outcome=completed" in l for l in lines), lines
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ phoenix \w", l) for l in lines)


def test_two_services_in_one_tick(cluster, capsys):
    cluster.services["api"] = service("api", replicas=2) | {"ID": "svc-api"}
    cluster.tasks += [task("a-old", "n-w2", ts(5)) | {"_service": "api"},
                      task("a-new", "n-m0", ts(50)) | {"_service": "api"}]
    for t in cluster.tasks:
        t.setdefault("_service", "web")
    controller(cluster, services=("web", "api")).tick()
    running = {t["ID"] for t in cluster.tasks if px.task_running(t)}
    assert {"t-old", "a-old"}.isdisjoint(running) and len(running) == 5
    out = capsys.readouterr().out
    assert out.count(" phoenix replaced ") == 2


def test_a_skipped_service_changes_nothing(cluster, capsys):
    cluster.tasks[0]["Status"]["State"] = "starting"
    controller(cluster).tick()
    assert not [c for c in cluster.calls if c[0] == "POST"]
    assert "phoenix skip service=web" in capsys.readouterr().out


def test_version_conflicts_are_retried(cluster):
    cluster.conflicts = 2
    controller(cluster).tick()
    assert {t["ID"] for t in cluster.tasks if px.task_running(t)} == {"t-mid", "t-new", "new1"}


def test_no_eligible_placement_times_out_and_still_resumes_the_nodes(cluster, capsys):
    cluster.progress = lambda: None  # the scheduler never places anything
    clock = iter(range(0, 10_000, 5))
    c = controller(cluster, clock=lambda: next(clock), place_timeout=20, update_timeout=30)
    c.tick()
    assert all(n["Spec"]["Availability"] == "active" and not n["Spec"]["Labels"] for n in cluster.nodes.values())
    assert "phoenix error service=web step=" in capsys.readouterr().out


def test_recover_clears_marks_of_an_interrupted_round_but_not_an_operators_pause(cluster, capsys):
    cluster.nodes["n-m0"]["Spec"].update(Availability="pause", Labels={"phoenix.paused": "r1"})
    cluster.nodes["n-w1"]["Spec"]["Labels"] = {"phoenix.rotate": "r1", "phoenix.node": "w1"}
    cluster.nodes["n-w2"]["Spec"]["Availability"] = "pause"  # paused by a person: left alone
    cluster.services["web"]["Spec"]["TaskTemplate"]["Placement"]["Constraints"] = ["node.labels.phoenix.rotate!=r1"]
    controller(cluster).recover()
    assert cluster.nodes["n-m0"]["Spec"] == {"Role": "worker", "Availability": "active", "Labels": {}}
    assert cluster.nodes["n-w1"]["Spec"]["Labels"] == {"phoenix.node": "w1"}
    assert cluster.nodes["n-w2"]["Spec"]["Availability"] == "pause"
    assert px.constraints(cluster.services["web"]["Spec"]) == []


def test_the_loop_ticks_every_interval_and_stops_on_request(cluster):
    now = [0.0]
    c = controller(cluster, clock=lambda: now[0])
    ticks = []
    c.tick = lambda: ticks.append(now[0])

    def sleep(s):
        now[0] += s
        if now[0] >= 35:
            c.stop.set()
    c.sleep = sleep
    c.run()
    assert ticks == [10.0, 20.0, 30.0]


# --- Kubernetes ------------------------------------------------------------------------------------------
def pod(name, created, ready=True, phase="Running", deleting=False):
    p = {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": "n1"},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = created
    return p


def test_k8s_picks_the_oldest_pod_only_when_all_are_ready():
    assert px.pick_pod("web", [pod("b", ts(20)), pod("a", ts(10)), pod("c", ts(30))])["metadata"]["name"] == "a"
    assert "not ready" in px.pick_pod("web", [pod("a", ts(10)), pod("b", ts(20), ready=False)]).reason
    assert "not ready" in px.pick_pod("web", [pod("a", ts(10)), pod("b", ts(20), deleting=True)]).reason
    assert "at least 2" in px.pick_pod("web", [pod("a", ts(10))]).reason


class FakeK8s:
    def __init__(self, pods, eviction_status=201):
        self.pods, self.status, self.posts, self.gets = pods, eviction_status, [], []

    def get(self, path):
        self.gets.append(path)
        return {"items": self.pods}

    def post(self, path, body=None, ok=None):
        self.posts.append((path, body))
        if self.status not in ok:
            raise px.ApiError(self.status, "Cannot evict pod as it would violate the pod's disruption budget.")
        return {}


def test_k8s_pass_evicts_through_the_eviction_api(capsys):
    api = FakeK8s([pod("web-1", ts(10)), pod("web-2", ts(20))])
    assert px.k8s_pass(api, "phoenix", ["web"]) == 1
    assert unquote(api.gets[0]) == ("/api/v1/namespaces/phoenix/pods?labelSelector="
                                    "app.kubernetes.io/part-of=phoenix,app.kubernetes.io/name=web")
    path, body = api.posts[0]
    assert path == "/api/v1/namespaces/phoenix/pods/web-1/eviction"
    assert body == {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "phoenix"}}
    assert "phoenix replace service=web pod=web-1" in capsys.readouterr().out


def test_k8s_pass_respects_a_disruption_budget_refusal(capsys):
    api = FakeK8s([pod("web-1", ts(10)), pod("web-2", ts(20))], eviction_status=429)
    assert px.k8s_pass(api, "phoenix", ["web"]) == 0
    assert "PodDisruptionBudget" in capsys.readouterr().out


# --- small things --------------------------------------------------------------------------------------
def test_timestamps_with_nanoseconds():
    assert px.parse_time("2026-11-27T10:00:01.5Z") - px.parse_time(T0) == pytest.approx(1.5)
    assert px.parse_time(ts(30)) > px.parse_time(ts(29))


def test_log_lines_quote_values_with_spaces():
    line = px.format_line("skip", service="web", reason="2/3 running: not at full health")
    assert line.endswith('phoenix skip service=web reason="2/3 running: not at full health"')


def test_healthcheck_follows_the_heartbeat(tmp_path):
    beat = tmp_path / "beat"
    assert not px.healthy(str(beat))
    px.touch(str(beat))
    assert px.healthy(str(beat))
    assert not px.healthy(str(beat), now=beat.stat().st_mtime + 61)


def test_main_refuses_an_unknown_mode(capsys):
    assert px.main(["dance"], env={}) == 2
    assert px.services_from_env({"PHOENIX_SERVICES": "web, api,"}) == ["web", "api"]


def test_a_stop_during_placement_still_closes_the_round(cluster, capsys):
    c = controller(cluster)
    post = cluster.post

    def post_then_stop(path, body=None, ok=None):
        out = post(path, body, ok)
        if path.startswith("/services/"):
            c.stop.set()  # SIGTERM right after the constraint went in
        return out
    cluster.post = post_then_stop
    c.tick()
    assert all(n["Spec"]["Availability"] == "active" and not n["Spec"]["Labels"] for n in cluster.nodes.values())
    assert px.constraints(cluster.services["web"]["Spec"]) == []
    assert "phoenix replaced service=web" in capsys.readouterr().out


def test_a_stop_while_the_replacement_waits_resumes_the_nodes_and_closes_the_round(cluster, capsys):
    c = controller(cluster)
    tasks = c.tasks

    def stop_once_the_constraint_is_in(name):
        if px.constraints(cluster.services[name]["Spec"]) and not c.stop.is_set():
            c.stop.set()  # SIGTERM while the controller waits for the replacement task
            return []
        return tasks(name)
    c.tasks = stop_once_the_constraint_is_in
    c.tick()
    assert all(n["Spec"]["Availability"] == "active" and not n["Spec"]["Labels"] for n in cluster.nodes.values())
    assert px.constraints(cluster.services["web"]["Spec"]) == []
    assert "phoenix stopping service=web step=place" in capsys.readouterr().out

"""The drills' reading of a Kubernetes cluster (scripts/k8s_state.summarise): the Swarm view's shape, from
API objects as kubectl returns them, without a cluster."""
import json

import pytest
import yaml

from scripts.k8s_state import pointed_at, rollout_state, summarise
from tests.drills.drills import at_full, healthy_again_s, running, write


def node(name, address, ready="True", control_plane=False):
    labels = {"kubernetes.io/hostname": name, **({"node-role.kubernetes.io/control-plane": ""} if control_plane else {})}
    return {"metadata": {"name": name, "uid": f"uid-{name}", "labels": labels}, "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": ready}]}}


def deployment(name="web", replicas=3, updated=3, total=3, available=3, generation=2, observed=2,
               progressing=("True", "NewReplicaSetAvailable"), writers=(("2026-12-02T05:00:00Z", "pulumi-kubernetes"),),
               env=(("APP_VERSION", "1"),)):
    managed = [{"manager": who, "operation": "Update", "time": when,
                "fieldsV1": {"f:spec": {"f:template": {"f:spec": {}}}}} for when, who in writers]
    managed.append({"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                    "time": "2026-12-02T06:00:00Z", "fieldsV1": {"f:status": {}}})
    return {"metadata": {"name": name, "uid": f"uid-{name}", "generation": generation, "managedFields": managed},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "template": {"spec": {"containers": [{
                         "name": name, "image": "reg/sample-app:1", "imagePullPolicy": "IfNotPresent",
                         "env": [{"name": k, "value": v} for k, v in env] + [
                             {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]}}},
            "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                       "availableReplicas": available,
                       "conditions": [{"type": "Progressing", "status": progressing[0], "reason": progressing[1]}]}}


def pod(name, service="web", node_name="k-w1", ready="True", cid="abc", restarts=0, since="2026-12-02T05:01:02Z",
        deleting=False, phase="Running"):
    meta = {"name": name, "uid": f"uid-{name}", "labels": {"app.kubernetes.io/name": service},
            "creationTimestamp": "2026-12-02T05:00:00Z", **({"deletionTimestamp": "2026-12-02T05:02:00Z"} if deleting else {})}
    return {"metadata": meta, "spec": {"nodeName": node_name},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": since}],
                       "containerStatuses": [{"name": service, "containerID": f"containerd://{cid}",
                                              "restartCount": restarts}]}}


NAMES = {"10.0.0.2": "stack-m0", "10.0.0.3": "stack-w1"}
NODES = [node("k-m0", "10.0.0.2", control_plane=True), node("k-w1", "10.0.0.3")]


def test_nodes_get_the_stack_names_roles_and_ready_state():
    state = summarise([NODES[0], node("k-w1", "10.0.0.3", ready="Unknown")], [], [], NAMES)
    assert [(n["hostname"], n["role"], n["state"]) for n in state["nodes"]] == [
        ("stack-m0", "manager", "ready"), ("stack-w1", "worker", "down")]


def test_a_pod_runs_once_ready_and_not_terminating_and_its_container_is_the_task():
    pods = [pod("web-a", cid="c1"), pod("web-b", cid="c2", ready="False"), pod("web-c", cid="c3", deleting=True),
            pod("api-a", service="api", cid="c4")]
    state = summarise(NODES, [deployment()], pods, NAMES)
    web = state["services"]["web"]
    assert [t["id"] for t in running(web)] == ["c1"]
    assert web["running"] == 1 and web["desired"] == 3
    (task,) = running(web)
    assert task["node"] == "stack-w1" and task["container"] == "c1" and task["since"] == "2026-12-02T05:01:02Z"
    assert {t["pod"]: t["state"] for t in web["tasks"]} == {"web-a": "running", "web-b": "unready", "web-c": "terminating"}
    assert web["env"] == {"APP_VERSION": "1"} and web["image"] == "reg/sample-app:1"


def test_a_restarted_container_is_a_new_task_healthy_from_its_ready_time():
    before = {"c1"}
    state = summarise(NODES, [deployment(replicas=1, updated=1, total=1, available=1)],
                      [pod("web-a", cid="c9", restarts=1, since="2026-12-02T05:01:05Z")], NAMES)
    assert at_full(state, ("web",))
    fault = 1796187662.0  # 2026-12-02T05:01:02Z
    assert healthy_again_s(state, ("web",), before, fault) == pytest.approx(3.0)


@pytest.mark.parametrize("kwargs, expected", [
    ({}, "completed"),
    ({"updated": 1, "total": 4}, "updating"),                       # old pods still there
    ({"observed": 1}, "updating"),                                  # the controller has not seen the change
    ({"progressing": ("False", "ProgressDeadlineExceeded"), "updated": 1, "total": 4}, "stalled"),
    ({"writers": (("2026-12-02T05:00:00Z", "kubectl-set"), ("2026-12-02T05:04:00Z", "phoenix-rollback"))},
     "rollback_completed"),
    ({"writers": (("2026-12-02T05:04:00Z", "phoenix-rollback"), ("2026-12-02T05:09:00Z", "kubectl-set"))},
     "completed"),                                                  # a new version since the undo
])
def test_rollout_state_in_swarm_words(kwargs, expected):
    assert rollout_state(deployment(**kwargs)) == expected


def test_a_stalled_rollout_is_not_at_full_strength():
    state = summarise(NODES, [deployment(replicas=1, updated=1, total=2, progressing=("False", "ProgressDeadlineExceeded"))],
                      [pod("web-a")], NAMES)
    assert state["services"]["web"]["update"] == "stalled" and not at_full(state, ("web",))


def test_a_node_admin_kubeconfig_is_pointed_at_the_published_api():
    raw = yaml.safe_dump({"clusters": [{"name": "k", "cluster": {"server": "https://10.0.0.2:6443"}}],
                          "users": [{"name": "admin", "user": {"token": "t"}}]})
    doc = yaml.safe_load(pointed_at(raw, "https://127.0.0.1:16443"))
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    assert doc["users"] == [{"name": "admin", "user": {"token": "t"}}]


def test_drill_records_of_each_orchestrator_stay_side_by_side(tmp_path):
    path = tmp_path / "drills.json"
    write([{"drill": "kill-task", "orchestrator": "swarm", "failed": 0}], path)
    write([{"drill": "kill-task", "orchestrator": "kubeadm", "failed": 3}], path)
    write([{"drill": "kill-task", "orchestrator": "swarm", "failed": 1}], path)  # a new Swarm run replaces the old
    records = json.loads(path.read_text())["drills"]
    assert sorted((r["orchestrator"], r["failed"]) for r in records) == [("kubeadm", 3), ("swarm", 1)]


def test_a_service_is_not_at_full_strength_below_its_autoscalers_minimum():
    # Just after `up`: the Deployment still has its first pod; the autoscaler's minimum is 3.
    one = summarise(NODES, [deployment(replicas=1, updated=1, total=1, available=1)], [pod("web-a", cid="c1")], NAMES,
                    [{"spec": {"scaleTargetRef": {"name": "web"}, "minReplicas": 3}}])
    assert one["services"]["web"]["desired"] == 3 and not at_full(one, ("web",))
    alone = summarise(NODES, [deployment(replicas=1, updated=1, total=1, available=1)], [pod("web-a", cid="c1")], NAMES)
    assert alone["services"]["web"]["desired"] == 1

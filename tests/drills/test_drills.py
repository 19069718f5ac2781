"""Fault drills under a steady request loop (20 req/s to the loopback entry URL), on Swarm or Kubernetes
(the same drills and figures; tests/drills/drills.py).

Targets: no failed request through a killed task, a rolling update, a failed update (rolled back) and
phoenix rounds (every service kept at its floor: the desired count on Swarm, the disruption budget
the evictions honour on Kubernetes); >= 99 % success when a worker stops; a killed task healthy again
within 5 s; a lost worker's replicas back within 15 s. Every figure is recorded in build/drills.json
whether or not it meets its target. The request targets are always asserted; the two time targets
are asserted unless the machine is overloaded (then they xfail, naming the load). The worker drill
runs last: it leaves the tasks spread unevenly.
"""
import os

import pytest

from tests.drills import drills

pytestmark = pytest.mark.engine

KILLED_TASK_BACK_S = 5.0
LOST_WORKER_BACK_S = 15.0


OVERLOADED = 4.0
"""Load average per CPU above which a timing target is recorded but not asserted (see `check`)."""


def check(rec, timing=None, **targets):
    """Record first, then assert: a missed target fails the test with the measured figures.

    `timing` = (ok, detail) of a time target. Times depend on the machine: where the load average per
    CPU exceeds OVERLOADED (other jobs starve the node containers), a missed time is an expected
    failure that names the load, while the request targets are asserted whatever the load."""
    misses = [f"{what}: {detail}" for what, (ok, detail) in targets.items() if not ok]
    assert not misses, f"{drills.line(rec)}\n  missed: {'; '.join(misses)}\n  errors: {rec.get('errors')}"
    if timing and not timing[0]:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        if load > OVERLOADED:
            pytest.xfail(f"time target missed ({timing[1]}) on an overloaded machine: load average "
                         f"{os.getloadavg()[0]:.0f} on {os.cpu_count()} CPUs")
        pytest.fail(f"{drills.line(rec)}\n  missed: {timing[1]}")


def test_a_killed_task_is_replaced_without_failed_requests(drill_target, drill_records):
    rec = drills.kill_task(drill_target)
    drill_records.append(rec)
    check(rec, no_failed_request=(rec["failed"] == 0, f"{rec['failed']} failed"),
          timing=(rec["recovery_s"] <= KILLED_TASK_BACK_S, f"back after {rec['recovery_s']} s, target 5 s"))


def test_a_rolling_update_drops_no_request(drill_target, drill_records):
    rec = drills.rolling_update(drill_target, version="drill-2")
    drill_records.append(rec)
    check(rec, no_failed_request=(rec["failed"] == 0, f"{rec['failed']} failed"),
          new_version_served=(rec["version"] in rec["versions"], f"versions seen {rec['versions']}"))


def test_a_failing_version_is_rolled_back_without_failed_requests(drill_target, drill_records):
    rec = drills.failed_update(drill_target)
    drill_records.append(rec)
    check(rec, rolled_back=(rec["outcome"] == "rollback_completed", rec["outcome"]),
          previous_version_kept=(rec["version_after"] == rec["version_before"], rec["version_after"]),
          no_failed_request=(rec["failed"] == 0, f"{rec['failed']} failed"),
          broken_version_never_served=("broken" not in rec["versions"], f"versions seen {rec['versions']}"))


def test_phoenix_replaces_containers_for_several_intervals_without_failed_requests(drill_target, drill_records):
    rec = drills.phoenix(drill_target, interval=10, duration=50)
    drill_records.append(rec)
    check(rec, replaced_several=(rec["replaced"] >= 3, f"{rec['replaced']} replaced, log errors {rec['errors_logged']}"),
          # Swarm: the desired count (start-first); Kubernetes: the disruption budget the evictions honour.
          never_below_floor=(all(rec["lowest"][s] >= rec["floor"][s] for s in rec["floor"]),
                             f"lowest {rec['lowest']} vs floor {rec['floor']} (desired {rec['desired']})"),
          no_failed_request=(rec["failed"] == 0, f"{rec['failed']} failed"))


def test_a_stopped_worker_costs_under_1_percent_of_requests(drill_target, drill_records):
    rec = drills.stop_worker(drill_target)
    drill_records.append(rec)
    check(rec, success_99=(rec["success_rate"] >= 0.99, f"{rec['success_rate']:.2%}"),
          back_at_full=(rec["recovery_s"] is not None, rec.get("outcome")),
          timing=(rec["recovery_s"] is not None and rec["recovery_s"] <= LOST_WORKER_BACK_S,
                  f"back after {rec['recovery_s']} s, target 15 s"))

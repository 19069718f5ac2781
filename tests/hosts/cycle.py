"""What the hosts cycles share: the bed and stack fixtures' bodies, phase timings, checks over SSH.

Skips, saying what is missing, without the bed image, a Docker engine, the offline app base image or
the Pulumi toolchain.
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from tests.hosts import bed as beds
from tests.hosts.stack import ROOT, HostsStack, missing_toolchain

BASE_IMAGE = "local/python-base:bookworm"
TIMINGS: dict[str, dict] = {}
"""stack -> phase -> seconds (and "retried" -> what had to be retried), for the summary (conftest.py)."""


def note_retries(stack: str, retries: list[str]) -> None:
    """Retries go into the summary beside the times: a pass that needed one says so."""
    if retries:
        TIMINGS.setdefault(stack, {}).setdefault("retried", []).extend(retries)


def summary_line(stack: str, label: str | None = None) -> str:
    """`label` (default: the stack's name), then the stack's phase times and retries, for the summary."""
    phases = TIMINGS.get(stack, {})
    times = ", ".join(f"{k} {v} s" for k, v in phases.items() if k != "retried")
    retried = "; ".join(phases.get("retried", []))
    return f"{label or stack}: {times}" + (f" (retried: {retried})" if retried else "")


def missing_for_pulumi() -> str:
    """Why `pulumi up` of an SSH-hosts stack cannot run here (toolchain, app base image), or ''."""
    why = missing_toolchain()
    if not why and subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode:
        why = f"the app's offline base image {BASE_IMAGE} is missing (or no Docker engine answers): images/build.sh base"
    return why


def missing(kind: beds.BedKind = beds.SWARM) -> str:
    return beds.missing_requirement(kind) or missing_for_pulumi()


@contextmanager
def timed(stack: str, phase: str):
    """Record how long `phase` of `stack` took (only when it completes)."""
    t0 = time.monotonic()
    yield
    TIMINGS.setdefault(stack, {})[phase] = round(time.monotonic() - t0, 1)


def make_bed(stack: str, subnet: str, names: list[str], kind: beds.BedKind = beds.SWARM, also_missing=lambda: ""):
    """Body of a module fixture: the bed's hosts, removed at the end whatever happened (skips, with
    the reason, without the bed's or the stack's requirements, or what `also_missing` names)."""
    why = missing(kind) or also_missing()
    if why:
        pytest.skip(why)
    bed = beds.Bed(stack, subnet, ROOT / "build" / "bed" / stack, kind)
    try:
        with timed(stack, "bed ready"):
            bed.create(names)
        yield bed
    finally:
        bed.destroy()


def make_stack(stack: HostsStack, hosts: list[dict]):
    """Body of a module fixture: `stack` created with `hosts` (phoenix:hosts entries), destroyed and
    removed at the end whatever happened (a no-op destroy after the test's own)."""
    stack.create(hosts)
    try:
        yield stack
    finally:
        stack.run("destroy", "--yes", "--skip-preview", check=False)
        stack.remove()


def module_fixtures(stack_name: str, subnet: str, bed_hosts: list[str], hosts: dict[str, str],
                    kind: beds.BedKind = beds.SWARM, also_missing=lambda: ""):
    """The fixtures `bed`, `found` (each host before the first up), `stack` and `deployed` (the stack's
    outputs after `pulumi up`, timed) of one cycle module: `bed, found, stack, deployed = module_fixtures(...)`."""

    @pytest.fixture(scope="module", name="bed")
    def bed_fixture():
        yield from make_bed(stack_name, subnet, bed_hosts, kind, also_missing)

    @pytest.fixture(scope="module", name="found")
    def found_fixture(bed):
        return {h.name: bed.snapshot(h) for h in bed.hosts}

    @pytest.fixture(scope="module", name="stack")
    def stack_fixture(bed, found):
        yield from make_stack(HostsStack(stack_name, bed.directory, bed.key_file), bed.stack_hosts(hosts))

    @pytest.fixture(scope="module", name="deployed")
    def deployed_fixture(stack):
        with timed(stack_name, "hosts up"):
            stack.up()
        return stack.outputs()

    return bed_fixture, found_fixture, stack_fixture, deployed_fixture


def assert_a_second_up_changes_nothing(stack_name: str, stack: HostsStack) -> None:
    with timed(stack_name, "no-op"):
        stack.up("--expect-no-changes")
        stack.run("preview", "--refresh", "--expect-no-changes")


def assert_destroy_leaves_the_hosts_as_found(stack_name: str, stack: HostsStack, bed: beds.Bed,
                                             found: dict[str, dict[str, str]]) -> None:
    with timed(stack_name, "destroy clean"):
        note_retries(stack_name, stack.destroy())
        assert_as_found(bed, found)
    assert set(TIMINGS[stack_name]) >= {"hosts up", "destroy clean"}


def whoami(url: str, requests: int = 30, patience: float = 60) -> list[dict]:
    """`requests` answers of the app's /whoami.json (retrying while the entry comes up)."""
    answers, deadline = [], time.monotonic() + patience
    while len(answers) < requests:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/whoami.json", timeout=10) as response:
                assert response.status == 200
                answers.append(json.loads(response.read()))
        except (urllib.error.URLError, ConnectionError) as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} does not answer: {err}")
            time.sleep(1)
    return answers


def assert_served_by_several_containers_on_several_hosts(url: str) -> None:
    answers = whoami(url)
    web = {(a["web"]["container"], a["web"]["node"]) for a in answers}
    api = {a["api"]["container"] for a in answers}
    assert len(web) >= 2 and len({node for _, node in web}) >= 2, f"web answered only from {web}"
    assert len(api) >= 2, f"api answered only from {api}"


def swarm_nodes(bed: beds.Bed, manager: str) -> dict[str, tuple[str, str, str]]:
    """hostname -> (status, availability, manager status) as the manager lists them."""
    out = bed.ssh(bed.host(manager), "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} "
                                     "{{.ManagerStatus}}'").stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return {r[0]: (r[1], r[2], r[3] if len(r) > 3 else "") for r in rows}


def replicas(bed: beds.Bed, manager: str) -> dict[str, str]:
    out = bed.ssh(bed.host(manager), "docker service ls --format '{{.Name}} {{.Replicas}}'").stdout
    return dict(line.split()[:2] for line in out.splitlines() if line.strip())


@contextmanager
def watch_nodes(bed: beds.Bed, manager: str):
    """While the block runs, the manager's node list twice a second: yields a list that fills, once the
    block ends, with (hostname, availability, manager status) rows."""
    # Ends on the host too once the local ssh is gone: the next write fails.
    loop = ("while :; do docker node ls --format '{{.Hostname}}|{{.Availability}}|{{.ManagerStatus}}' || exit; "
            "sleep 0.5; done")
    watcher = subprocess.Popen(["ssh", "-F", str(bed.ssh_config), bed.host(manager).address, loop],
                               stdout=subprocess.PIPE, text=True)
    rows: list[tuple[str, ...]] = []
    try:
        yield rows
    finally:
        watcher.kill()
        rows.extend(tuple(line.split("|")) for line in watcher.communicate()[0].splitlines() if line.count("|") == 2)


def assert_as_found(bed: beds.Bed, found: dict[str, dict[str, str]], names=None, patience: float = 30) -> None:
    """Each named host (default: all) as it was before the first `up`, within `patience` seconds
    (containers of removed services, a closing SSH session, may take a moment to go)."""
    deadline = time.monotonic() + patience
    for name in names or found:
        while True:
            now = bed.snapshot(bed.host(name))
            changed = {k: (found[name][k], now[k]) for k in now if now[k] != found[name][k]}
            if not changed:
                break
            assert time.monotonic() < deadline, f"{name} is not as it was found: {changed}"
            time.sleep(1)

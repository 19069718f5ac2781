"""Fixtures of the VM tests: three Debian VMs booted once per session (tests/vm/vms.py).

Skips (with the reason in the summary) when /dev/kvm is missing, a tool is missing (the Debian
package is named; scripts/vm-deps.sh installs them all), or the image cannot be built.

Accelerator, $PHOENIX_VM_ACCEL: `auto` (default) uses KVM when a stock Debian kernel boots under it
and otherwise full emulation (TCG) with the reason recorded; `kvm` skips instead of emulating;
`tcg` always emulates (also without /dev/kvm). $PHOENIX_VM_MEMORY_MB (1024) sizes each VM.

Timings (boot, time to a healthy Swarm, the phases of the pulumi cycle of test_pulumi_vms.py) are
written to build/vm-timings.json, printed at the end, and the pulumi cycle's line to
build/vm-summary.txt (scripts/test.sh puts it in its summary).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.hosts.cycle import TIMINGS as CYCLE_TIMINGS, summary_line
from tests.vm import vms

TIMINGS_FILE = vms.ROOT / "build" / "vm-timings.json"
SUMMARY_FILE = vms.ROOT / "build" / "vm-summary.txt"
CYCLE_STACK = "vm-ci"
"""The stack of test_pulumi_vms.py."""
VM_COUNT = 3
_timings: dict = {}


@pytest.fixture(scope="session")
def timings() -> dict:
    return _timings


@pytest.fixture(scope="session")
def vm_cluster(timings):
    accel = os.environ.get("PHOENIX_VM_ACCEL", "auto")
    reason = vms.missing_requirement(need_kvm=accel != "tcg")
    if reason:
        pytest.skip(reason)
    try:
        image, image_seconds = vms.build_image()
    except (vms.ImageError, OSError) as err:
        pytest.skip(f"the VM image cannot be built: {err}")
    note = None
    if accel in ("auto", "kvm"):
        note = vms.kvm_boots_stock_kernel(image)
        if note and accel == "kvm":
            pytest.skip(note)
        accel = "kvm" if note is None else "tcg"
    timings.update({"accel": accel, "accel_note": note, "vms": VM_COUNT,
                    "memory_mb": int(os.environ.get("PHOENIX_VM_MEMORY_MB", "1024")),
                    "image": str(image), "image_build_seconds": round(image_seconds, 1)})
    # Not pytest's tmp_path: other pytest runs on this machine prune its numbered directories.
    workdir = Path(tempfile.mkdtemp(prefix="phoenix-vms-"))
    t0 = time.monotonic()
    cluster = None
    try:
        cluster = vms.boot(VM_COUNT, workdir, memory_mb=timings["memory_mb"], accel=accel)  # cleans up if it fails
        timings["boot_seconds"] = {vm.name: round(vm.ssh_ready - vm.started, 1) for vm in cluster.vms}
        timings["all_booted_seconds"] = round(time.monotonic() - t0, 1)
        cluster.powered_on = t0
        yield cluster
    finally:
        if cluster is not None:
            cluster.destroy()
        logs = vms.ROOT / "build" / "vm-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(workdir, ignore_errors=True)


def cycle_line() -> str:
    """The pulumi cycle's phases on the VMs (test_pulumi_vms.py), or ''."""
    if CYCLE_STACK not in CYCLE_TIMINGS:
        return ""
    return summary_line(CYCLE_STACK, f"{CYCLE_STACK} ({_timings['vms']} VMs, accel={_timings['accel']})")


def pytest_sessionfinish(session, exitstatus):
    if _timings.get("boot_seconds"):
        TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps({**_timings, "pulumi_cycle": CYCLE_TIMINGS.get(CYCLE_STACK, {})}, indent=2) + "\n")
        SUMMARY_FILE.write_text(cycle_line() + "\n" if cycle_line() else "")


def pytest_terminal_summary(terminalreporter):
    t = _timings
    if not t.get("boot_seconds"):
        return
    line = (f"VM timings ({t['vms']} VMs x {t['memory_mb']} MiB, accel={t['accel']}): "
            f"boot to SSH max {max(t['boot_seconds'].values())} s {t['boot_seconds']}")
    if "swarm_seconds" in t:
        line += (f"; Swarm 1+2 healthy {t['swarm_seconds']} s after boot "
                 f"({t['power_on_to_swarm_seconds']} s from power-on)")
    terminalreporter.write_line(line)
    if cycle_line():
        terminalreporter.write_line(cycle_line())
    if t.get("accel_note"):
        terminalreporter.write_line(f"  emulated, not KVM: {t['accel_note']}")
    terminalreporter.write_line(f"  written to {Path(TIMINGS_FILE).relative_to(vms.ROOT)}")

"""The hosts cycles' timings: written to build/hosts-timings.json, one line per stack to
build/hosts-summary.txt (scripts/test.sh puts those in its summary), and printed at the end."""
import json

from tests.hosts.cycle import TIMINGS, summary_line
from tests.hosts.stack import ROOT

TIMINGS_FILE = ROOT / "build" / "hosts-timings.json"
SUMMARY_FILE = ROOT / "build" / "hosts-summary.txt"


def summary_lines() -> list[str]:
    return [summary_line(stack) for stack in TIMINGS if not stack.startswith("vm-")]  # the VMs' are tests/vm's


def pytest_sessionfinish(session, exitstatus):
    if TIMINGS:
        TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(TIMINGS, indent=2) + "\n")
        SUMMARY_FILE.write_text("".join(line + "\n" for line in summary_lines()))


def pytest_terminal_summary(terminalreporter):
    for line in summary_lines():
        terminalreporter.write_line(line)

"""The hosts cycles' timings: written to build/hosts-timings.json and printed at the end
(scripts/test.sh puts them in its summary)."""
import json

from tests.hosts.cycle import TIMINGS
from tests.hosts.stack import ROOT

TIMINGS_FILE = ROOT / "build" / "hosts-timings.json"


def pytest_sessionfinish(session, exitstatus):
    if TIMINGS:
        TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(TIMINGS, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter):
    for stack, phases in TIMINGS.items():
        terminalreporter.write_line(f"{stack}: " + ", ".join(f"{k} {v} s" for k, v in phases.items()))

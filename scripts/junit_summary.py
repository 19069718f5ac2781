"""Print what ran and what skipped, per test folder, from pytest's JUnit XML (CI's closing summary)."""
import collections
import sys
import xml.etree.ElementTree as ET


def main(path: str) -> int:
    counts = collections.defaultdict(collections.Counter)
    reasons = collections.Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        folder = "/".join(parts[:2]) if parts[0] == "tests" else parts[0]
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
                reasons[(folder, child.get("message", "").removeprefix("Skipped: "))] += 1
        counts[folder][outcome] += 1
    print(f"{'tests':<20} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for folder in sorted(counts):
        c = counts[folder]
        print(f"{folder:<20} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
    for (folder, reason), n in sorted(reasons.items()):
        print(f"skipped {n} in {folder}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

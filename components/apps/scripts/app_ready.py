"""Waits until the app answers: the entry URL serves a page made by web and api of the expected version.

    python3 - URL VERSION TIMEOUT_S < app_ready.py      (components/apps/ready.py runs it so)

Standard library only: it runs on the Pulumi host with whichever python3 is there.
"""
from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import Optional, Sequence

EXPECTED = ("web", "api")


def problem(url: str, version: str, timeout: float = 3) -> Optional[str]:
    """Why `url`/whoami.json does not show web and api of `version` answering, or None when it does."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local URL: no proxy
    try:
        with opener.open(url.rstrip("/") + "/whoami.json", timeout=timeout) as resp:
            body = json.loads(resp.read().decode())
    except Exception as err:  # noqa: BLE001 - any failure is a reason to wait, reported at the end
        return f"{type(err).__name__}: {err}"
    seen = {s: (body.get(s) or {}).get("service") for s in EXPECTED}
    if any(seen[s] != s for s in EXPECTED):
        return f"answered {body!r}, not from {' and '.join(EXPECTED)}"
    if body["web"].get("version") != version:
        return f"web answered version {body['web'].get('version')!r}, not {version!r}"
    return None


def wait(url: str, version: str, timeout: float, every: float = 1) -> Optional[str]:
    """None once the app answers, else the last reason it did not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        why = problem(url, version)
        if why is None or time.monotonic() > deadline:
            return why
        time.sleep(every)


def main(argv: Sequence[str]) -> int:
    url, version, timeout = argv[0], argv[1], float(argv[2])
    t0 = time.monotonic()
    why = wait(url, version, timeout)
    if why:
        print(f"the app at {url} did not answer from {' and '.join(EXPECTED)} (version {version}) within "
              f"{timeout:g} s: {why}", file=sys.stderr)
        return 1
    print(f"{url} answered from {' and '.join(EXPECTED)} after {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The api service: GET /api/whoami -> {"service","container","node","version"}.

`?delay=SECONDS` (at most 10) makes the answer wait: handy to check that rolling updates
and SIGTERM finish in-flight requests.
"""

from __future__ import annotations

import sys
import time
from urllib.parse import parse_qs, urlsplit

from .common import BaseHandler, Config, serve

MAX_DELAY = 10.0


class ApiHandler(BaseHandler):
    routes = {"/api/whoami": "whoami"}

    def whoami(self):
        query = parse_qs(urlsplit(self.path).query)
        try:
            delay = min(max(float(query.get("delay", ["0"])[0]), 0.0), MAX_DELAY)
        except ValueError:
            return self.reply_json(400, {"error": "delay must be a number of seconds"})
        if delay:
            time.sleep(delay)
        self.reply_json(200, self.config.whoami())


def main(env=None) -> int:
    return serve(Config.from_env("api", env), ApiHandler)


if __name__ == "__main__":
    sys.exit(main())

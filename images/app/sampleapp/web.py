"""The web service: GET / (HTML) and GET /whoami.json show which web and which api answered.

The api is called at API_URL + /api/whoami with a 2 s timeout, up to three times when no answer comes.
Each attempt connects to the addresses of the api's name in turn: Swarm's dnsrr names and Kubernetes'
headless Services list every ready container, so one that was just killed, or whose node was lost
and is still listed for a few seconds, costs a connect timeout rather than the request. An HTTP error
is not retried. A failure answers 502.
"""

from __future__ import annotations

import html
import json
import sys
import urllib.error
import urllib.request

from .common import BaseHandler, Config, serve

API_TIMEOUT = 2.0
API_ATTEMPTS = 3


def call_api(api_url: str, timeout: float = API_TIMEOUT, attempts: int = API_ATTEMPTS) -> dict:
    """GET <api_url>/api/whoami; raises RuntimeError with a readable message on any failure."""
    url = api_url + "/api/whoami"
    failure = ""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{url}: HTTP {e.code}") from e
        except (urllib.error.URLError, OSError) as e:
            failure = f"{url}: {getattr(e, 'reason', e)}"
            continue
        try:
            return json.loads(body.decode())
        except ValueError as e:
            raise RuntimeError(f"{url}: {e}") from e
    raise RuntimeError(f"{failure} ({attempts} attempts)")


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>sample app</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
.err{{color:#b00}}</style></head>
<body><h1>sample app v{version}</h1>
<table><tr><th></th><th>container</th><th>node</th><th>version</th></tr>
<tr><th>web</th><td>{web_container}</td><td>{web_node}</td><td>{web_version}</td></tr>
{api_row}
</table></body></html>
"""


def _row(name: str, who: dict) -> str:
    cells = "".join(f"<td>{html.escape(str(who.get(k, '')))}</td>" for k in ("container", "node", "version"))
    return f"<tr><th>{name}</th>{cells}</tr>"


class WebHandler(BaseHandler):
    routes = {"/": "index", "/whoami.json": "whoami_json"}

    def index(self):
        web = self.config.whoami()
        try:
            api, code = call_api(self.config.api_url), 200
            api_row = _row("api", api)
        except RuntimeError as e:
            code = 502
            api_row = f'<tr><th>api</th><td colspan="3" class="err">error: {html.escape(str(e))}</td></tr>'
        page = PAGE.format(version=html.escape(web["version"]), web_container=html.escape(web["container"]),
                           web_node=html.escape(web["node"]), web_version=html.escape(web["version"]),
                           api_row=api_row)
        self.reply(code, page, "text/html; charset=utf-8")

    def whoami_json(self):
        web = self.config.whoami()
        try:
            api = call_api(self.config.api_url)
        except RuntimeError as e:
            return self.reply_json(502, {"error": str(e), "web": web})
        self.reply_json(200, {"web": web, "api": api})


def main(env=None) -> int:
    return serve(Config.from_env("web", env), WebHandler)


if __name__ == "__main__":
    sys.exit(main())

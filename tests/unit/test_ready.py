"""`pulumi up` waits for the app: the check script against a stand-in entry, and the check resource."""
import http.server
import json
import runpy
import subprocess
import sys
import threading
from pathlib import Path

import pulumi
import pytest

from components.apps.ready import SCRIPT, AppReady

CHECK = runpy.run_path(str(Path(__file__).resolve().parents[2] / "components" / "apps" / "scripts" / "app_ready.py"))


@pytest.fixture
def entry():
    """A local HTTP server answering /whoami.json with whatever the test puts in `answer`."""
    answer = {"status": 200, "body": {}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", answer
    server.shutdown()


def whoami(web="web", api="api", version="1"):
    return {"web": {"service": web, "version": version}, "api": {"service": api}}


def test_web_and_api_of_the_version_answering_is_ready(entry):
    url, answer = entry
    answer["body"] = whoami()
    assert CHECK["problem"](url, "1") is None


@pytest.mark.parametrize("status, body, reason", [
    (502, {"error": "api down", "web": {"service": "web"}}, "HTTPError"),
    (200, whoami(api="edge"), "not from web and api"),
    (200, whoami(version="0"), "version '0', not '1'"),
])
def test_anything_else_is_not_ready(entry, status, body, reason):
    url, answer = entry
    answer.update(status=status, body=body)
    assert reason in CHECK["problem"](url, "1")


def test_the_script_read_on_stdin_fails_with_the_reason_after_its_timeout(entry):
    url, answer = entry
    answer["body"] = whoami(version="0")
    done = subprocess.run([sys.executable, "-", url, "1", "1"], input=SCRIPT, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 1
    assert f"the app at {url} did not answer from web and api (version 1) within 1 s" in done.stderr
    answer["body"] = whoami()
    done = subprocess.run([sys.executable, "-", url, "1", "5"], input=SCRIPT, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr


@pulumi.runtime.test
def test_the_check_runs_the_script_on_the_entry_url_and_again_when_the_app_changes(mocks):
    ready = AppReady("r", {"url": "http://127.0.0.1:8080/", "version": "2", "after": [], "timeout_s": 180,
                           "triggers": ["img@sha256:1"]})

    def check(_):
        command = mocks.of("command:local:Command")["r-check"]
        assert command["create"] == '"${PULUMI_PYTHON_CMD:-python3}" - http://127.0.0.1:8080/ 2 180'
        assert command["stdin"] == SCRIPT
        assert "img@sha256:1" in command["triggers"]
    return ready.message.apply(check)

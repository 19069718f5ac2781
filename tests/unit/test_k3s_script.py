"""The k3s bootstrap script's logic, run by sh in a scratch root (PHOENIX_K3S_ROOT) against a fake
`k3s` and a fake install script that log their calls: no k3s binary is needed."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

from components.orchestrators.k3s import k3s_argv

FAKE_K3S = r"""#!/bin/sh
# Fake k3s: appends its argv to $LOG; answers from files in $STATE: node-NAME (a node), etcd-NAME (an
# etcd member, Ready unless notready-NAME), containerd-up, ctr-image (what `images ls` lists).
echo "k3s $*" >> "$LOG"
case "$1" in
  --version) echo "k3s version ${FAKE_VERSION:-v1.31.4+k3s1} (0123abcd)"; echo "go version go1.22" ;;
  kubectl)
    shift
    [ "$1" = --kubeconfig ] && shift 2
    if [ -f "$STATE/api-down" ]; then
      echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?" >&2
      exit 1
    fi
    case "$1" in
      get)
        case "$2" in
          --raw=/readyz) [ -f "$STATE/api-up" ] && echo ok || exit 1 ;;
          nodes)  # -l node-role.kubernetes.io/etcd=true --no-headers
            for f in "$STATE"/etcd-*; do
              [ -f "$f" ] || continue
              name=${f##*/etcd-}
              if [ -f "$STATE/notready-$name" ]; then echo "$name NotReady"; else echo "$name Ready"; fi
            done ;;
          node)
            [ -f "$STATE/node-$3" ] || { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1; }
            case "$5" in
              *labels*etcd*) [ -f "$STATE/etcd-$3" ] && printf true ;;
              *removed-node-name*) [ -f "$STATE/removed-$3" ] && printf '%s' "$3" ;;
            esac ;;
        esac ;;
      wait) exit 0 ;;
      drain) [ -f "$STATE/drain-stuck" ] && exit 1 ;;
      # k3s's etcd controller: removes the member and confirms, unless it cannot.
      annotate) [ -f "$STATE/etcd-stuck" ] || touch "$STATE/removed-$3" ;;
      delete) rm -f "$STATE/node-$3" ;;
    esac ;;
  ctr)
    shift 3  # ctr -n k8s.io
    case "$1 $2" in
      "version ") [ -f "$STATE/containerd-up" ] || exit 1 ;;
      "images import") cp "$3" "$STATE/imported" ;;
      "images ls") cat "$STATE/ctr-image" 2>/dev/null ;;
      "images rm") rm -f "$STATE/ctr-image" ;;
    esac ;;
esac
exit 0
"""

FAKE_INSTALL = r"""#!/bin/sh
# Fake install script: logs what it was asked to do, and whether a token came in its environment.
echo "install EXEC=$INSTALL_K3S_EXEC SKIP=$INSTALL_K3S_SKIP_DOWNLOAD VERSION=$INSTALL_K3S_VERSION TOKEN_ENV=${K3S_TOKEN:-none}" >> "$LOG"
touch "$STATE/api-up"
"""

TOKEN = "0123456789abcdef-secret"


@pytest.fixture
def env(tmp_path: Path):
    bin_dir, root, state = tmp_path / "bin", tmp_path / "root", tmp_path / "state"
    for d in (bin_dir, root, state):
        d.mkdir()
    (bin_dir / "k3s").write_text(FAKE_K3S)
    (bin_dir / "k3s").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(tmp_path / "log"),
            "STATE": str(state), "PHOENIX_K3S_ROOT": str(root)}


@pytest.fixture
def run(env, tmp_path: Path):
    def go(*args, stdin="", extra=None):
        (tmp_path / "log").write_text("")
        done = subprocess.run(k3s_argv(*args), input=stdin, env={**env, **(extra or {})},
                              capture_output=True, text=True, timeout=30)
        return done, (tmp_path / "log").read_text().splitlines()
    return go


@pytest.fixture
def airgap(tmp_path: Path) -> Path:
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "k3s").write_text(FAKE_K3S)
    (stage / "install.sh").write_text(FAKE_INSTALL)
    (stage / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"images")
    return stage


def root_file(env, path: str) -> Path:
    return Path(env["PHOENIX_K3S_ROOT"] + path)


def test_put_writes_the_file_with_its_mode_and_leaves_an_unchanged_one_alone(run, env):
    done, _ = run("put", "/etc/rancher/k3s/registries.yaml", "0600", stdin="mirrors: {}\n")
    assert done.returncode == 0, done.stderr
    target = root_file(env, "/etc/rancher/k3s/registries.yaml")
    assert target.read_text() == "mirrors: {}\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.stat().st_mtime_ns
    os.utime(target, ns=(before - 10**9, before - 10**9))
    done, _ = run("put", "/etc/rancher/k3s/registries.yaml", "0600", stdin="mirrors: {}\n")
    assert done.returncode == 0 and target.stat().st_mtime_ns == before - 10**9, "unchanged content rewritten"


def test_airgap_install_puts_binary_images_token_file_and_runs_the_local_install_script(run, env, airgap):
    done, calls = run("install", "server", "v1.31.4+k3s1", str(airgap), "--node-name=s0", "--cluster-init",
                      stdin=TOKEN + "\n")
    assert done.returncode == 0, done.stderr
    token_file = root_file(env, "/etc/rancher/k3s/phoenix-token")
    assert token_file.read_text().strip() == TOKEN and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert root_file(env, "/usr/local/bin/k3s").read_text() == FAKE_K3S
    assert root_file(env, "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst").read_bytes() == b"images"
    (install,) = [c for c in calls if c.startswith("install ")]
    assert install == (f"install EXEC=server --node-name=s0 --cluster-init --token-file={token_file} "
                       "SKIP=true VERSION=v1.31.4+k3s1 TOKEN_ENV=none")
    assert not any(TOKEN in c for c in calls), "the token appeared on a command line"
    assert any("get --raw=/readyz" in c for c in calls), "a server install waits for its API"
    assert done.stdout.strip() == os.uname().nodename


def test_agent_install_does_not_wait_for_an_api(run, airgap):
    done, calls = run("install", "agent", "v1.31.4+k3s1", str(airgap), "--server=https://10.0.0.10:6443",
                      stdin=TOKEN + "\n")
    assert done.returncode == 0, done.stderr
    assert not any("readyz" in c for c in calls)
    assert any("EXEC=agent --server=https://10.0.0.10:6443 --token-file=" in c for c in calls)


def test_install_refuses_a_missing_token(run, airgap):
    done, calls = run("install", "server", "v1.31.4+k3s1", str(airgap), stdin="")
    assert done.returncode != 0 and "cluster token on stdin" in done.stderr
    assert not any(c.startswith("install ") for c in calls)


def test_airgap_binary_of_another_release_is_refused(run, airgap):
    done, calls = run("install", "server", "v1.31.4+k3s1", str(airgap), stdin=TOKEN + "\n",
                      extra={"FAKE_VERSION": "v1.30.2+k3s1"})
    assert done.returncode != 0
    assert "phoenix:k3sVersion is v1.31.4+k3s1" in done.stderr and "v1.30.2+k3s1" in done.stderr
    assert not any(c.startswith("install ") for c in calls)


def test_online_install_downloads_the_install_script(run, tmp_path, airgap):
    done, calls = run("install", "agent", "v1.31.4+k3s1", "", "--server=https://10.0.0.10:6443", stdin=TOKEN + "\n",
                      extra={"PHOENIX_K3S_INSTALL_URL": f"file://{airgap / 'install.sh'}"})
    assert done.returncode == 0, done.stderr
    assert any("SKIP=false VERSION=v1.31.4+k3s1" in c for c in calls)


def test_wait_server_gives_up_with_the_reason(run, env):
    root_file(env, "/etc/rancher/k3s").mkdir(parents=True)
    root_file(env, "/etc/rancher/k3s/k3s.yaml").write_text("kubeconfig")
    done, _ = run("wait-server", "1")
    assert done.returncode != 0 and "the Kubernetes API" in done.stderr and "1 s" in done.stderr
    Path(env["STATE"], "api-up").touch()
    done, _ = run("wait-server", "1")
    assert done.returncode == 0 and done.stdout.strip() == "ready"


def test_kubeconfig_prints_the_admin_kubeconfig(run, env):
    root_file(env, "/etc/rancher/k3s").mkdir(parents=True)
    root_file(env, "/etc/rancher/k3s/k3s.yaml").write_text("apiVersion: v1\n")
    done, _ = run("kubeconfig")
    assert done.returncode == 0 and done.stdout == "apiVersion: v1\n"


def test_wait_node_waits_for_the_node_then_for_ready(run, env):
    done, _ = run("wait-node", "w1", "1")
    assert done.returncode != 0 and "node w1" in done.stderr
    Path(env["STATE"], "node-w1").touch()
    done, calls = run("wait-node", "w1", "2")
    assert done.returncode == 0 and done.stdout.strip() == "w1"
    assert any("wait --for=condition=Ready node/w1" in c for c in calls)


def kubectl_calls(calls: list[str]) -> list[str]:
    return [c.split(" ", 4)[-1] for c in calls if "kubectl" in c]


def test_remove_drains_then_deletes_and_is_idempotent(run, env):
    Path(env["STATE"], "node-w2").touch()
    done, calls = run("remove", "w2")
    assert done.returncode == 0, done.stderr
    kubectl = kubectl_calls(calls)
    drain = next(i for i, c in enumerate(kubectl) if c.startswith("drain w2 --ignore-daemonsets"))
    assert 0 < drain < len(kubectl) - 1 and kubectl[-1].startswith("delete node w2")
    assert not any(c.startswith("annotate") for c in kubectl), "an agent has no etcd member"
    done, calls = run("remove", "w2")
    assert done.returncode == 0 and not any(" drain w2" in c for c in calls)
    assert "not in the cluster" in done.stderr


def three_servers(env, *extra: str) -> None:
    for f in ("node-s0", "node-s1", "node-s2", "etcd-s0", "etcd-s1", "etcd-s2", *extra):
        Path(env["STATE"], f).touch()


def test_remove_takes_a_servers_etcd_member_out_before_deleting_the_node(run, env):
    three_servers(env)
    done, calls = run("remove", "s2")
    assert done.returncode == 0, done.stderr
    kubectl = kubectl_calls(calls)
    annotate = kubectl.index("annotate node s2 --overwrite etcd.k3s.cattle.io/remove=true")
    confirmed = max(i for i, c in enumerate(kubectl) if "removed-node-name" in c)
    delete = next(i for i, c in enumerate(kubectl) if c.startswith("delete node s2"))
    assert kubectl.index(next(c for c in kubectl if c.startswith("drain s2"))) < annotate < confirmed < delete


def test_remove_fails_loudly_when_the_etcd_member_does_not_leave(run, env):
    three_servers(env, "etcd-stuck")
    done, calls = run("remove", "s2", "1")
    assert done.returncode != 0 and "removal of the etcd member of s2" in done.stderr
    assert not any(c.startswith("delete node") for c in kubectl_calls(calls)), "the node must stay"
    assert Path(env["STATE"], "node-s2").exists()


@pytest.mark.parametrize("state, reason", [
    ("api-down", "cannot ask the Kubernetes API"),
    ("drain-stuck", "could not drain node s2"),
])
def test_remove_never_takes_a_failure_for_already_gone(run, env, state, reason):
    three_servers(env, state)
    done, calls = run("remove", "s2")
    assert done.returncode != 0 and reason in done.stderr, done.stderr
    assert not any(c.startswith(("delete", "annotate")) for c in kubectl_calls(calls))


def test_removing_a_server_refuses_to_break_the_etcd_quorum(run, env):
    three_servers(env, "notready-s2")
    # s2 is not Ready: without s1, one of the two servers left would be Ready, not a majority.
    done, calls = run("remove", "s1")
    assert done.returncode != 0
    assert "removing server s1 would leave 1 Ready of 2 servers, below a quorum of 2" in done.stderr
    assert not any(c.startswith(("drain", "annotate", "delete")) for c in kubectl_calls(calls))
    Path(env["STATE"], "notready-s2").unlink()
    done, _ = run("remove", "s1")
    assert done.returncode == 0, done.stderr


def test_uninstall_runs_the_left_script_and_fails_with_it(run, env):
    bin_dir = root_file(env, "/usr/local/bin")
    bin_dir.mkdir(parents=True)
    script = bin_dir / "k3s-agent-uninstall.sh"
    script.write_text("#!/bin/sh\necho uninstalled >> \"$LOG\"\nexit ${FAIL:-0}\n")
    script.chmod(0o755)
    done, calls = run("uninstall")
    assert done.returncode == 0 and "uninstalled" in calls
    done, _ = run("uninstall", extra={"FAIL": "1"})
    assert done.returncode != 0 and "k3s-agent-uninstall.sh failed" in done.stderr
    script.unlink()
    done, _ = run("uninstall")
    assert done.returncode == 0 and "not installed" in done.stderr


def test_import_keeps_the_archive_where_k3s_imports_from_before_k3s_runs(run, env):
    done, calls = run("import", "phoenix/sample-app:abc", stdin="ARCHIVE")
    assert done.returncode == 0, done.stderr
    kept = root_file(env, "/var/lib/rancher/k3s/agent/images/phoenix-phoenix_sample-app_abc.tar")
    assert kept.read_text() == "ARCHIVE" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert not any("images import" in c for c in calls) and done.stdout.strip() == "phoenix/sample-app:abc"


def test_import_into_a_running_k3s_imports_at_once(run, env):
    Path(env["STATE"], "containerd-up").touch()
    done, calls = run("import", "phoenix/sample-app:abc", stdin="ARCHIVE")
    assert done.returncode == 0, done.stderr
    assert any(c.startswith("k3s ctr -n k8s.io images import ") for c in calls)
    assert Path(env["STATE"], "imported").read_text() == "ARCHIVE"


def test_import_refuses_an_empty_archive(run):
    done, _ = run("import", "phoenix/sample-app:abc", stdin="")
    assert done.returncode != 0 and "empty archive" in done.stderr


def test_has_image_checks_the_archive_and_containerd(run, env):
    done, _ = run("has-image", "phoenix/sample-app:abc")
    assert done.returncode != 0 and "is not on" in done.stderr
    run("import", "phoenix/sample-app:abc", stdin="ARCHIVE")
    Path(env["STATE"], "containerd-up").touch()
    done, calls = run("has-image", "phoenix/sample-app:abc")
    assert done.returncode != 0 and "not in k3s's containerd" in done.stderr
    assert any("images ls -q name==docker.io/phoenix/sample-app:abc" in c for c in calls)
    Path(env["STATE"], "ctr-image").write_text("docker.io/phoenix/sample-app:abc\n")
    done, _ = run("has-image", "phoenix/sample-app:abc")
    assert done.returncode == 0 and done.stdout.strip() == "phoenix/sample-app:abc"


def test_remove_image_removes_archive_and_image(run, env):
    run("import", "phoenix/sample-app:abc", stdin="ARCHIVE")
    Path(env["STATE"], "containerd-up").touch()
    Path(env["STATE"], "ctr-image").write_text("docker.io/phoenix/sample-app:abc\n")
    done, calls = run("remove-image", "phoenix/sample-app:abc")
    assert done.returncode == 0, done.stderr
    assert not root_file(env, "/var/lib/rancher/k3s/agent/images/phoenix-phoenix_sample-app_abc.tar").exists()
    assert "k3s ctr -n k8s.io images rm docker.io/phoenix/sample-app:abc" in calls
    done, calls = run("remove-image", "phoenix/sample-app:abc")
    assert done.returncode == 0 and not any("images rm" in c for c in calls)


def test_unknown_action_is_refused(run):
    done, _ = run("frobnicate")
    assert done.returncode != 0 and "unknown action 'frobnicate'" in done.stderr

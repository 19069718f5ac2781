# shellcheck shell=bash
# scripts/pulumi-env.sh: the one place for the offline Pulumi settings. Source it (bash, `set -u` safe):
#     source scripts/pulumi-env.sh
# Makefile targets and CI source it before any `pulumi` command. Every value below respects one the
# user already set. The toolchain itself is built by scripts/toolchain.sh (see docs/airgap.md).
#
#   PULUMI_TOOLCHAIN_DIR        toolchain cache (default ~/.cache/pulumi-airgap); its bin/ goes first on PATH
#   PULUMI_SKIP_UPDATE_CHECK    true: no version check against the network
#   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION
#                               true when the toolchain bin dir is used: plugins come from the plugin
#                               cache (scripts/toolchain.sh installs them), never from a download that
#                               cannot work here
#   PULUMI_IGNORE_AMBIENT_PLUGINS
#                               true when the toolchain bin dir is used: resource plugins from the plugin
#                               cache under the SDKs' versions, not from PATH (which Pulumi warns about)
#   PULUMI_BACKEND_URL          default file://<repo>/.pulumi-state (local state, no Pulumi Cloud)
#   PULUMI_CONFIG_PASSPHRASE    default "local-dev-only": ONLY for local throwaway stacks; set your own
#                               (or PULUMI_CONFIG_PASSPHRASE_FILE) for anything that holds real secrets:
#                               stacks of substrate ssh or cloud refuse the default (components/config.py)
#   PULUMI_PYTHON_CMD           the project's .venv python when it exists (see below)

_pe_repo=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." 2>/dev/null && pwd -P)

export PULUMI_TOOLCHAIN_DIR="${PULUMI_TOOLCHAIN_DIR:-${HOME:-/root}/.cache/pulumi-airgap}"
if [ -d "$PULUMI_TOOLCHAIN_DIR/bin" ]; then
  case ":${PATH:-}:" in
    *":$PULUMI_TOOLCHAIN_DIR/bin:"*) ;;
    *) export PATH="$PULUMI_TOOLCHAIN_DIR/bin${PATH:+:$PATH}" ;;
  esac
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-true}"
  export PULUMI_IGNORE_AMBIENT_PLUGINS="${PULUMI_IGNORE_AMBIENT_PLUGINS:-true}"
fi

export PULUMI_SKIP_UPDATE_CHECK="${PULUMI_SKIP_UPDATE_CHECK:-true}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_pe_repo/.pulumi-state}"
case "$PULUMI_BACKEND_URL" in
  file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" 2>/dev/null || true ;;
esac
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="local-dev-only"
fi

# The air-gapped Python language host (sdk v3.68.0, see docs/airgap.md) predates the engine passing
# Pulumi.yaml's runtime options to it, so it does not see `virtualenv: .venv`: it runs the python
# found first on PATH, or PULUMI_PYTHON_CMD. Point it at the project's virtualenv when there is one.
if [ -z "${PULUMI_PYTHON_CMD:-}" ] && [ -x "$_pe_repo/.venv/bin/python" ]; then
  export PULUMI_PYTHON_CMD="$_pe_repo/.venv/bin/python"
fi

unset _pe_repo

#!/usr/bin/env bash
# scripts/toolchain.sh: build (or reuse from cache) an air-gapped Pulumi toolchain from Go modules.
#
# Everything is compiled with the machine's Go from the Go module proxy; nothing is downloaded from
# release sites. docs/airgap.md says what is served, what builds, and why some pieces do not.
#
# Usage:  bash scripts/toolchain.sh            # build what is missing, reuse the rest
#         PULUMI_TOOLCHAIN_FORCE=1 bash scripts/toolchain.sh   # also build pieces found elsewhere
#         bash scripts/toolchain.sh --list     # print the pieces and their pinned versions
# Then:   source scripts/pulumi-env.sh         # puts $PULUMI_TOOLCHAIN_DIR/bin first on PATH
#
# Layout (PULUMI_TOOLCHAIN_DIR, default ~/.cache/pulumi-airgap):
#   pieces/<piece>-<key>/bin/...    one build per piece, <key> = hash of every version it is made of
#   toolchain-<key>/bin/...         symlinks to the pieces of this run
#   bin -> toolchain-<key>/bin      stable path for PATH (switched atomically)
#   logs/<piece>-<key>.log          full go output of each build
#
# Pieces: cli (pulumi), python (pulumi-language-python + its scripts), kubernetes, docker,
# command. A piece whose executables are already on PATH outside PULUMI_TOOLCHAIN_DIR (or, for a
# resource plugin, installed under $PULUMI_HOME/plugins) is not built unless PULUMI_TOOLCHAIN_FORCE=1.
# PULUMI_TOOLCHAIN_PIECES="cli python ..." restricts the run to some pieces (scripts/up.sh asks only
# for those its stack needs). Missing pieces build side by side, each with `go build -p 2`: their
# downloads and links overlap; every 30 s a line says how long each has run and about how long it takes.
# The resource plugins are then installed into Pulumi's plugin cache ($PULUMI_HOME/plugins) under the
# version their Python SDK in requirements.txt asks for, so that Pulumi loads them without a warning.
#
# Exit codes:
#   0  every required executable is available (in the bin dir, on PATH or in the plugin cache);
#      required = $PULUMI_TOOLCHAIN_REQUIRED, default "pulumi pulumi-language-python pulumi-resource-command"
#   1  some required executable is missing (optional pieces that failed are listed, never fatal)
#   2  no usable Go toolchain while something had to be built, or bad usage
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TC_DIR=${PULUMI_TOOLCHAIN_DIR:-$HOME/.cache/pulumi-airgap}
FORCE=${PULUMI_TOOLCHAIN_FORCE:-0}
REQUIRED=${PULUMI_TOOLCHAIN_REQUIRED:-pulumi pulumi-language-python pulumi-resource-command}
PIECES=${PULUMI_TOOLCHAIN_PIECES:-cli python command docker kubernetes}
# Bump when a build recipe below changes, so that cached pieces are rebuilt.
RECIPE=3

# ---- pinned versions (docs/airgap.md explains each) ------------------------------------------------
# CLI: github.com/pulumi/pulumi/pkg/v3, ./cmd/pulumi; its scripts for the Python host come from sdk/v3.
PULUMI_VERSION=${PULUMI_VERSION:-v3.274.1}
# The Python language host lives in its own, unserved module since v3.69; v3.68.0 is the last sdk/v3
# release that contains it (package github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python).
PYHOST_SDK_VERSION=${PYHOST_SDK_VERSION:-v3.68.0}
# Kubernetes provider: the one pseudo-version served (commit of 2026-01-15, 1.5 days before v4.25.0). It
# reports 4.25.0+airgap.<commit> (build metadata, as the docker plugin does): not below the SDK's 4.25.0.
K8S_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_MODULE_VERSION=${K8S_MODULE_VERSION:-v4.0.0-20260115033456-f47bc2d6f199}
K8S_SDK_VERSION=${K8S_SDK_VERSION:-v4.24.0}   # what its go.mod requires (it replaced it with ../sdk)
K8S_PLUGIN_VERSION=${K8S_PLUGIN_VERSION:-4.25.0+airgap.f47bc2d6f199}
# Docker: pulumi-docker's own provider module is not served; we bridge the upstream Terraform provider
# (the same construction pulumi-docker uses) with pulumi-terraform-bridge. See docs/airgap.md.
DOCKER_TF_MODULE_VERSION=${DOCKER_TF_MODULE_VERSION:-v0.0.0-20260916201441-96d331c98ff4}
TF_BRIDGE_VERSION=${TF_BRIDGE_VERSION:-v3.127.0}
TF_SDK_FORK_VERSION=${TF_SDK_FORK_VERSION:-v2.0.0-20260318212141-5525259d096b}
# Build metadata (+...), not a pre-release tag: Pulumi warns when a plugin reports a version below the
# SDK's (5.2.0), and 5.2.0+anything is not below it, while still saying what the binary is.
DOCKER_PLUGIN_VERSION=${DOCKER_PLUGIN_VERSION:-5.2.0+airgap.1.kreuzwerker.96d331c98ff4}
# Command: github.com/pulumi/pulumi-command/provider is untagged and no version of it is served here;
# toolchain/command-provider (a compatible provider built from served modules) is built instead,
# unless PULUMI_COMMAND_PROVIDER_VERSION names a version of the upstream module your proxy serves.
COMMAND_MODULE=github.com/pulumi/pulumi-command/provider
COMMAND_MODULE_VERSION=${PULUMI_COMMAND_PROVIDER_VERSION:-}
COMMAND_PLUGIN_VERSION=${COMMAND_PLUGIN_VERSION:-1.2.1}

# Seconds a cold build of each piece takes on 2 cores (docs/airgap.md, "Timings"): the progress
# lines' estimate when this machine has not built the piece before.
declare -A ESTIMATE_S=([cli]=600 [python]=70 [command]=240 [docker]=1500 [kubernetes]=4500)

# ---- helpers ----------------------------------------------------------------------------------------
T0=$(date +%s)
say() { printf 'toolchain [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
hash_of() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

GO=""
find_go() {
  [ -n "$GO" ] && return 0
  GO=$(command -v go 2>/dev/null || true)
  [ -z "$GO" ] && [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go
  [ -n "$GO" ]
}
GO_VERSION=unknown
if find_go; then GO_VERSION=$("$GO" env GOVERSION 2>/dev/null || echo unknown); fi

export GOFLAGS=-mod=mod GOTOOLCHAIN=local
BUILD_FLAGS=(-p 2 -trimpath)
LDS="-s -w"

MISSING=()      # "piece: reason" lines
declare -A PIECE_DIR=()
RUN_DIR=$(mktemp -d)   # what the pieces built side by side report back (build_piece runs in a subshell)
trap 'rm -rf "$RUN_DIR"' EXIT

# on_path EXE: prints a PATH location of EXE that is not inside TC_DIR.
on_path() {
  local IFS=: d real tc
  tc=$(cd "$TC_DIR" 2>/dev/null && pwd -P) || tc=$TC_DIR
  for d in $PATH; do
    [ -n "$d" ] || continue
    real=$(cd "$d" 2>/dev/null && pwd -P) || continue
    case "$real/" in "$tc"/*) continue ;; esac
    if [ -x "$d/$1" ] && [ ! -d "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  return 1
}
# in_plugin_cache NAME: a resource plugin installed the usual way ($PULUMI_HOME/plugins/resource-NAME-v*),
# not by this script (install_plugins marks its own).
PLUGIN_HOME=${PULUMI_HOME:-$HOME/.pulumi}/plugins
in_plugin_cache() {
  local f
  for f in "$PLUGIN_HOME"/resource-"$1"-v*/pulumi-resource-"$1"; do
    [ -x "$f" ] && [ ! -f "$(dirname "$f")/.phoenix-airgap" ] && { echo "$f"; return 0; }
  done
  return 1
}
# found_elsewhere EXE...: true if all EXEs exist outside our cache (and FORCE is off).
found_elsewhere() {
  [ "$FORCE" = 1 ] && return 1
  local e where
  for e in "$@"; do
    where=$(on_path "$e") || { case "$e" in pulumi-resource-*) where=$(in_plugin_cache "${e#pulumi-resource-}") || return 1 ;; *) return 1 ;; esac; }
  done
  return 0
}

# build_piece PIECE KEY FUNC: runs FUNC OUT with OUT=pieces/PIECE-KEY, logs to logs/PIECE-KEY.log.
# Run in the background: it reports a failure in $RUN_DIR/PIECE.missing.
build_piece() {
  local piece=$1 key=$2 fn=$3
  local out="$TC_DIR/pieces/$piece-$key" log="$TC_DIR/logs/$piece-$key.log"
  local t=$(date +%s) tmp="$out.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$TC_DIR/logs"
  say "$piece: building (log: $log; about $(mmss "$(estimate "$piece")") on 2 cores)"
  date +%s > "$RUN_DIR/$piece.started"
  # Not inside `if`: bash ignores set -e in a tested command, and a recipe must stop at its first error.
  ( set -e; "$fn" "$tmp" ) >"$log" 2>&1
  local st=$?
  rm -f "$RUN_DIR/$piece.started"
  if [ $st -eq 0 ]; then
    # The build's duration: the next estimate for this piece, and the bench's cold `make up` figure.
    echo $(( $(date +%s) - t )) > "$tmp/.build_seconds"
    touch "$tmp/.complete"
    rm -rf "$out"; mv "$tmp" "$out"
    say "$piece: built in $(mmss $(( $(date +%s) - t )))"
    return 0
  fi
  rm -rf "$tmp"
  local why
  why=$(grep -v '^go: downloading' "$log" | grep -iE 'error|not available|cannot|refus|404|403|failed|undefined' | head -n 3 | tr '\n' ' ' | cut -c1-400)
  [ -n "$why" ] || why=$(tail -n 3 "$log" | tr '\n' ' ' | cut -c1-400)
  echo "$piece: build failed after $(( $(date +%s) - t ))s: $why (full log: $log)" > "$RUN_DIR/$piece.missing"
  say "$piece: FAILED (see $log)"
  return 1
}

# estimate PIECE: seconds its build takes: the last build of it recorded here, else the table above.
estimate() {
  local f last=""
  for f in "$TC_DIR"/pieces/"$1"-*/.build_seconds; do [ -f "$f" ] && last=$(cat "$f"); done
  echo "${last:-${ESTIMATE_S[$1]:-600}}"
}

# progress: while builds run, one line every 30 s per running piece: elapsed and expected time.
progress() {
  local n=0 f piece started
  while [ -n "$(jobs -rp)" ]; do
    sleep 1; n=$((n + 1))
    [ $((n % 30)) -eq 0 ] || continue
    for f in "$RUN_DIR"/*.started; do
      [ -f "$f" ] || continue
      piece=$(basename "$f" .started); started=$(cat "$f")
      say "$piece: building, $(mmss $(( $(date +%s) - started ))) elapsed of about $(mmss "$(estimate "$piece")")"
    done
  done
  wait
}

# A scratch copy of a module from the module cache (read-only there).
module_copy() { # MODULE VERSION DEST
  local dir
  dir=$("$GO" mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "module $1@$2 could not be downloaded"; "$GO" mod download -json "$1@$2"; return 1; }
  rm -rf "$3"; cp -r "$dir" "$3"; chmod -R u+w "$3"
}

# ---- recipes (each runs in a subshell with set -e; $1 = output dir) --------------------------------
recipe_cli() {
  local src="$1/src"
  module_copy github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION" "$src"
  cd "$src"
  "$GO" mod edit -dropreplace=github.com/pulumi/pulumi/sdk/v3 -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION"
  "$GO" build "${BUILD_FLAGS[@]}" \
    -ldflags "$LDS -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$1/bin/pulumi" ./cmd/pulumi
  cd "$1"; rm -rf "$src"
  "$1/bin/pulumi" version
}

recipe_python() {
  local src="$1/src" sdk
  module_copy github.com/pulumi/pulumi/sdk/v3 "$PYHOST_SDK_VERSION" "$src"
  ( cd "$src" && "$GO" build "${BUILD_FLAGS[@]}" \
      -ldflags "$LDS -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PYHOST_SDK_VERSION" \
      -o "$1/bin/pulumi-language-python" ./python/cmd/pulumi-language-python )
  rm -rf "$src"
  # The scripts the host runs (exec shim, dynamic-provider plugin) come from the current sdk/v3.
  sdk=$("$GO" mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$1/bin/pulumi-language-python-exec"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$1/bin/pulumi-resource-pulumi-python"
  if [ -f "$sdk/python/dist/pulumi-analyzer-policy-python" ]; then
    install -m 0755 "$sdk/python/dist/pulumi-analyzer-policy-python" "$1/bin/pulumi-analyzer-policy-python"
  fi
}

recipe_kubernetes() {
  local src="$1/src"
  module_copy "$K8S_MODULE" "$K8S_MODULE_VERSION" "$src"
  cd "$src"
  "$GO" mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
    -require="github.com/pulumi/pulumi-kubernetes/sdk/v4@$K8S_SDK_VERSION"
  # generate.go writes the gitignored schema-embed.json and terraform-mapping-embed.json.
  ( cd cmd/pulumi-resource-kubernetes && VERSION=$K8S_PLUGIN_VERSION "$GO" run generate.go )
  "$GO" build "${BUILD_FLAGS[@]}" \
    -ldflags "$LDS -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PLUGIN_VERSION" \
    -o "$1/bin/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
  cd "$1"; rm -rf "$src"
}

# write_bridge_module DIR NAME UPSTREAM_PATH UPSTREAM_SERVED_AS UPSTREAM_VERSION (an SDKv2 provider)
# A small module of our own: a shim (a nested module under the upstream path, so that it may import
# the upstream's internal/provider package, as pulumi-docker's shim does), the
# ProviderInfo, a tfgen main (schema) and the provider main.
write_bridge_module() {
  local d=$1 name=$2 up=$3 served=$4 upv=$5
  mkdir -p "$d/shim" "$d/pkg" "$d/cmd/pulumi-tfgen-$name" "$d/cmd/pulumi-resource-$name"
  cat >"$d/shim/go.mod" <<EOF
module $up/shim

go 1.25

require $up $upv

replace $up => $served $upv
EOF
  cat >"$d/go.mod" <<EOF
module example.invalid/pulumi-$name-airgap

go 1.25

require (
	github.com/pulumi/pulumi-terraform-bridge/v3 $TF_BRIDGE_VERSION
	$up/shim v0.0.0
)

replace (
	$up/shim => ./shim
	$up => $served $upv
	github.com/hashicorp/terraform-plugin-sdk/v2 => github.com/pulumi/terraform-plugin-sdk/v2 $TF_SDK_FORK_VERSION
)
EOF
  cat >"$d/shim/shim.go" <<EOF
// Package shim exposes the upstream provider, whose package is internal to its module.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"$up/internal/provider"
)

func NewProvider() *schema.Provider { return provider.New("")() }
EOF
    cat >"$d/cmd/pulumi-resource-$name/main.go" <<EOF
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"example.invalid/pulumi-$name-airgap/pkg"
)

//go:embed schema.json
var schema []byte

func main() { tfbridge.Main("$name", pkg.Version, pkg.Provider(), schema) }
EOF
    cat >"$d/cmd/pulumi-tfgen-$name/main.go" <<EOF
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"example.invalid/pulumi-$name-airgap/pkg"
)

func main() { tfgen.Main("$name", pkg.Version, pkg.Provider()) }
EOF
  echo '{}' >"$d/cmd/pulumi-resource-$name/schema.json"
}

# bridge_build DIR NAME VERSION: tidy, generate the schema with tfgen, build the plugin.
bridge_build() {
  local d=$1 name=$2 ver=$3 out=$4
  cd "$d"
  "$GO" mod tidy
  ( cd shim && "$GO" mod tidy )
  local ld="$LDS -X example.invalid/pulumi-$name-airgap/pkg.Version=$ver"
  "$GO" build "${BUILD_FLAGS[@]}" -ldflags "$ld" -o "$d/pulumi-tfgen-$name" "./cmd/pulumi-tfgen-$name"
  PULUMI_SKIP_MISSING_MAPPING_ERROR=true PULUMI_SKIP_EXTRA_MAPPING_ERROR=true PULUMI_MISSING_DOCS_ERROR=false \
    "$d/pulumi-tfgen-$name" schema --out "$d/cmd/pulumi-resource-$name"
  "$GO" build "${BUILD_FLAGS[@]}" -ldflags "$ld" -o "$out/bin/pulumi-resource-$name" "./cmd/pulumi-resource-$name"
  cp "$d/cmd/pulumi-resource-$name/schema.json" "$out/schema-$name.json"
}

# The docker shim also completes the upstream's read of a container, where it differs from what the
# provider sent, so that a refresh plans no replacement (docs/airgap.md): Docker keeps the security
# option `systempaths=unconfined` as empty MaskedPaths and ReadonlyPaths, never in SecurityOpt, and a
# stopped container has no port bindings to read. Part of the docker piece's key.
read -r -d '' DOCKER_SHIM <<'EOF_SHIM'
// Package shim exposes the upstream provider, whose package is internal to its module.
package shim

import (
	"context"

	"github.com/hashicorp/terraform-plugin-sdk/v2/diag"
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

const systemPathsUnconfined = "systempaths=unconfined"

func NewProvider() *schema.Provider {
	p := provider.New("")()
	containers := p.ResourcesMap["docker_container"]
	read := containers.ReadContext
	containers.ReadContext = func(ctx context.Context, d *schema.ResourceData, meta interface{}) diag.Diagnostics {
		ports := d.Get("ports")
		diags := read(ctx, d, meta)
		if diags.HasError() || d.Id() == "" {
			return diags
		}
		return append(diags, completeRead(ctx, d, meta, ports)...)
	}
	return p
}

// completeRead sets what the upstream read leaves out: ports of a stopped container (the update that
// starts it again is the plan, not a replacement), systempaths=unconfined of an unconfined one.
func completeRead(ctx context.Context, d *schema.ResourceData, meta interface{}, ports interface{}) diag.Diagnostics {
	client, err := meta.(*provider.ProviderConfig).MakeClient(ctx, d)
	if err != nil {
		return diag.FromErr(err)
	}
	c, err := client.ContainerInspect(ctx, d.Id())
	if err != nil {
		return diag.FromErr(err)
	}
	if c.State != nil && !c.State.Running {
		if err := d.Set("ports", ports); err != nil {
			return diag.FromErr(err)
		}
	}
	// nil: Docker's defaults (or a privileged container's none); empty: unconfined.
	h := c.HostConfig
	if h == nil || h.MaskedPaths == nil || len(h.MaskedPaths) > 0 || len(h.ReadonlyPaths) > 0 {
		return nil
	}
	opts := schema.NewSet(schema.HashString, d.Get("security_opts").(*schema.Set).List())
	opts.Add(systemPathsUnconfined)
	return diag.FromErr(d.Set("security_opts", opts))
}
EOF_SHIM

recipe_docker() {
  local d="$1/src" up=github.com/terraform-providers/terraform-provider-docker
  write_bridge_module "$d" docker "$up" github.com/kreuzwerker/terraform-provider-docker "$DOCKER_TF_MODULE_VERSION"
  printf '%s\n' "$DOCKER_SHIM" > "$d/shim/shim.go"
  # pulumi-docker's names where they are not the bridge's defaults (checked against the pulumi-docker
  # 5.2.0 Python SDK, docs/airgap.md): docker_image is RemoteImage (its Image is a resource of its own,
  # not bridged), docker_config is ServiceConfig, and three fields keep their singular names.
  cat >"$d/pkg/info.go" <<'EOF'
package pkg

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// Version is set with -ldflags -X.
var Version = "0.0.0-dev"

func Provider() tfbridge.ProviderInfo {
	p := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(shim.NewProvider()),
		Name:        "docker",
		Version:     Version,
		DisplayName: "Docker",
		GitHubOrg:   "kreuzwerker",
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_image":  {Tok: "docker:index/remoteImage:RemoteImage"},
			"docker_config": {Tok: "docker:index/serviceConfig:ServiceConfig"},
			"docker_container": {
				Tok: "docker:index/container:Container",
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"},
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
		},
		Config: map[string]*tfbridge.SchemaInfo{
			"registry_auth": {Name: "registryAuth"},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: "docker:index/getRemoteImage:getRemoteImage"},
		},
	}
	p.MustComputeTokens(tokens.SingleModule("docker_", "index", tokens.MakeStandard("docker")))
	return p
}
EOF
  bridge_build "$d" docker "$DOCKER_PLUGIN_VERSION" "$1"
  cd "$1"; rm -rf "$d"
}

recipe_command() {
  if [ -z "$COMMAND_MODULE_VERSION" ]; then
    # The upstream module is not served: build the compatible provider kept in this repository.
    "$REPO/toolchain/command-provider/build.sh" "$1/bin"
    return
  fi
  local src="$1/src"
  module_copy "$COMMAND_MODULE" "$COMMAND_MODULE_VERSION" "$src"
  cd "$src"
  ( cd cmd/pulumi-resource-command && { [ ! -f generate.go ] || VERSION=$COMMAND_PLUGIN_VERSION "$GO" run generate.go; } )
  "$GO" build "${BUILD_FLAGS[@]}" \
    -ldflags "$LDS -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_PLUGIN_VERSION" \
    -o "$1/bin/pulumi-resource-command" ./cmd/pulumi-resource-command
  cd "$1"; rm -rf "$src"
}

# piece -> executables it provides, and the cache key of its inputs.
piece_exes() {
  case $1 in
    cli) echo pulumi ;;
    python) echo pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python ;;
    *) echo "pulumi-resource-$1" ;;
  esac
}
piece_key() {
  case $1 in
    cli) hash_of "$RECIPE" "$GO_VERSION" "$PULUMI_VERSION" ;;
    python) hash_of "$RECIPE" "$GO_VERSION" "$PYHOST_SDK_VERSION" "$PULUMI_VERSION" ;;
    kubernetes) hash_of "$RECIPE" "$GO_VERSION" "$K8S_MODULE_VERSION" "$K8S_SDK_VERSION" "$K8S_PLUGIN_VERSION" ;;
    docker) hash_of "$RECIPE" "$GO_VERSION" "$DOCKER_TF_MODULE_VERSION" "$TF_BRIDGE_VERSION" "$TF_SDK_FORK_VERSION" "$DOCKER_PLUGIN_VERSION" "$DOCKER_SHIM" ;;
    command) hash_of "$RECIPE" "$GO_VERSION" "$COMMAND_MODULE_VERSION" "$COMMAND_PLUGIN_VERSION" \
      "$(cat "$REPO"/toolchain/command-provider/{go.mod,go.sum,*.go} | sha256sum)" ;;
  esac
}

if [ "${1:-}" = --list ]; then
  for p in $PIECES; do printf '%-11s key=%s  provides: %s\n' "$p" "$(piece_key "$p")" "$(piece_exes "$p" | tr '\n' ' ')"; done
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--list]" >&2; exit 2
fi

mkdir -p "$TC_DIR/pieces" "$TC_DIR/logs"
say "dir $TC_DIR, go: ${GO:-none} ($GO_VERSION), pieces: $PIECES"

no_go=0
for p in $PIECES; do
  # shellcheck disable=SC2046
  if found_elsewhere $(piece_exes "$p"); then
    say "$p: found outside the cache ($(on_path "$(piece_exes "$p" | head -n1)" || in_plugin_cache "$p")), not built (PULUMI_TOOLCHAIN_FORCE=1 builds it)"
    continue
  fi
  out="$TC_DIR/pieces/$p-$(piece_key "$p")"
  if [ -f "$out/.complete" ]; then
    say "$p: cached ($out)"
  elif ! find_go; then
    MISSING+=("$p: not cached and no Go toolchain found (need go >= 1.26 on PATH)"); no_go=1
  else
    build_piece "$p" "$(piece_key "$p")" "recipe_$p" &
  fi
done
progress
for p in $PIECES; do
  out="$TC_DIR/pieces/$p-$(piece_key "$p")"
  if [ -f "$out/.complete" ]; then PIECE_DIR[$p]=$out
  elif [ -f "$RUN_DIR/$p.missing" ]; then MISSING+=("$(cat "$RUN_DIR/$p.missing")")
  fi
done

# Assemble toolchain-<key>/bin from the pieces of this run, plus the cached current-version pieces a
# restricted run (PULUMI_TOOLCHAIN_PIECES) did not ask for, and point bin at it.
ALL_PIECES="cli python command docker kubernetes"
for p in $ALL_PIECES; do
  [ -n "${PIECE_DIR[$p]:-}" ] && continue
  case " $PIECES " in *" $p "*) continue ;; esac
  c="$TC_DIR/pieces/$p-$(piece_key "$p")"
  [ -f "$c/.complete" ] && PIECE_DIR[$p]=$c
done
PIECES=$ALL_PIECES
keys=()
for p in $PIECES; do [ -n "${PIECE_DIR[$p]:-}" ] && keys+=("$(basename "${PIECE_DIR[$p]}")"); done
# Hard links, not symlinks: Pulumi looks for its language host beside the real path of the running
# `pulumi`, and warns about a host found elsewhere on PATH.
tkey=$(hash_of "${keys[@]:-none}" hardlinks)
tbin="$TC_DIR/toolchain-$tkey/bin"
if [ ! -d "$tbin" ]; then
  mkdir -p "$tbin.tmp.$$"
  for p in $PIECES; do
    [ -n "${PIECE_DIR[$p]:-}" ] || continue
    for f in "${PIECE_DIR[$p]}"/bin/*; do [ -e "$f" ] && ln -f "$f" "$tbin.tmp.$$/$(basename "$f")"; done
  done
  mv "$tbin.tmp.$$" "$tbin"
fi
[ -d "$TC_DIR/bin" ] && [ ! -L "$TC_DIR/bin" ] && rm -rf "$TC_DIR/bin"
ln -sfn "toolchain-$tkey/bin" "$TC_DIR/bin.tmp.$$" && mv -T "$TC_DIR/bin.tmp.$$" "$TC_DIR/bin"
say "bin: $TC_DIR/bin -> toolchain-$tkey/bin ($(ls "$tbin" | tr '\n' ' '))"

# install_plugins: each resource plugin of this toolchain into Pulumi's plugin cache, as the version its
# Python SDK (requirements.txt) asks for; a marker file names the piece it came from (docs/airgap.md).
install_plugins() {
  local p sdk version dir bin
  for p in docker command kubernetes; do
    [ -n "${PIECE_DIR[$p]:-}" ] || continue
    bin="${PIECE_DIR[$p]}/bin/pulumi-resource-$p"
    sdk=$(sed -n "s/^pulumi-$p==\([0-9.]*\).*/\1/p" "$REPO/requirements.txt")
    [ -n "$sdk" ] || { say "plugin $p: no pulumi-$p pin in requirements.txt, not installed"; continue; }
    dir="$PLUGIN_HOME/resource-$p-v$sdk"
    if cmp -s "$bin" "$dir/pulumi-resource-$p" && [ -f "$dir/.phoenix-airgap" ]; then continue; fi
    PULUMI_SKIP_UPDATE_CHECK=true "$TC_DIR/bin/pulumi" plugin install resource "$p" "$sdk" --file "$bin" --reinstall >/dev/null 2>&1 \
      || { say "plugin $p: pulumi plugin install failed"; continue; }
    basename "${PIECE_DIR[$p]}" > "$dir/.phoenix-airgap"
    say "plugin $p: $(basename "${PIECE_DIR[$p]}") installed as resource-$p-v$sdk"
  done
}
[ -x "$TC_DIR/bin/pulumi" ] && install_plugins

rc=0
for e in $REQUIRED; do
  if [ -x "$TC_DIR/bin/$e" ]; then continue; fi
  if w=$(on_path "$e"); then say "required $e: using $w"; continue; fi
  case "$e" in pulumi-resource-*) if w=$(in_plugin_cache "${e#pulumi-resource-}"); then say "required $e: using $w"; continue; fi ;; esac
  say "required $e: MISSING"
  rc=1
done
for m in "${MISSING[@]}"; do say "missing piece: $m"; done
[ $rc -ne 0 ] && [ $no_go -eq 1 ] && rc=2
say "done, exit $rc"
exit $rc

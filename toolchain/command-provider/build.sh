#!/usr/bin/env bash
# build.sh OUTDIR: builds OUTDIR/pulumi-resource-command from this directory's go.mod/go.sum, with
# modules from the Go module proxy only (github.com/pulumi/pulumi/sdk/v3, golang.org/x/crypto and
# their dependencies; no pulumi-command or pulumi-go-provider module).
# Environment: GO (default: go on PATH, else /usr/local/go/bin/go), VERSION (default 1.2.1: the
# version pulumi_command 1.2.1 asks for), GOBUILDPARALLEL (go build -p, default 2).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd -P)
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
VERSION=${VERSION:-1.2.1}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
cd "$here"
"$GO" build -p "${GOBUILDPARALLEL:-2}" -trimpath -ldflags "-s -w -X main.Version=$VERSION" \
  -o "$out/pulumi-resource-command" .
echo "built $out/pulumi-resource-command (plugin version $VERSION)" >&2

#!/usr/bin/env bash
# Debian packages the KVM tests (tests/vm) and images/vm/build.sh need. Idempotent: installs only
# what is missing; needs root (apt-get). CI calls it before `pytest -m kvm`.
#
#   qemu-system-x86   qemu-system-x86_64 (KVM)        qemu-utils   qemu-img (qcow2 base + overlays)
#   debootstrap       the VM root filesystem          e2fsprogs    mkfs.ext4 -d (disk without a loop mount)
#   openssh-client    ssh, ssh-keygen                 iproute2     ip netns / bridge / tap for the VM network
set -euo pipefail

say() { echo "vm-deps.sh: $*" >&2; }

declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils [debootstrap]=debootstrap
  [mkfs.ext4]=e2fsprogs [ssh]=openssh-client [ssh-keygen]=openssh-client [ip]=iproute2
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all present"
  exit 0
fi
[ "$(id -u)" = 0 ] || { say "missing ${missing[*]} and not root: cannot apt-get install"; exit 1; }
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
say "installing ${pkgs[*]}"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
say "installed ${pkgs[*]}"

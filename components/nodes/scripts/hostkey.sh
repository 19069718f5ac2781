#!/bin/sh
# An SSH host's public key at first contact, the one copy. Runs on the Pulumi host as
# `sh -c "<this text>" hostkey NAME HOST PORT` and prints one line `TYPE BASE64` (ed25519 first).
# Pulumi keeps that line in the stack's state and never asks again: every later SSH connection to the
# host (remote commands, the image pipe) accepts only this key, so a changed key fails the run.
# Retries for about 30 s (a new VM may still be starting sshd); then `hostkey: NAME (HOST:PORT): reason`.
set -eu

name=$1 host=$2 port=$3
command -v ssh-keyscan >/dev/null 2>&1 || { echo "hostkey: $name: ssh-keyscan is missing on the Pulumi host (package openssh-client)" >&2; exit 1; }
i=0
while :; do
  keys=$(ssh-keyscan -T 5 -p "$port" "$host" 2>/dev/null || true)
  for type in ssh-ed25519 ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 ssh-rsa; do
    line=$(printf '%s\n' "$keys" | awk -v t="$type" '$2 == t { print $2 " " $3; exit }')
    if [ -n "$line" ]; then echo "$line"; exit 0; fi
  done
  i=$((i + 1))
  [ "$i" -lt 6 ] || { echo "hostkey: $name ($host:$port): no SSH host key answered in 30 s" >&2; exit 1; }
  sleep 5
done

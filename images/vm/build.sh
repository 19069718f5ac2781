#!/usr/bin/env bash
# Build the disk of the test VMs (tests/vm) from Debian packages, once, and cache it.
#
#   images/vm/build.sh            prints the cache directory holding disk.qcow2, vmlinuz, initrd.img
#
# The VM is Debian bookworm with the kernel, systemd, openssh-server, docker.io, apparmor (docker.io
# recommends it: Debian kernels enable AppArmor, and containers fail to start without its parser)
# and python3 (testinfra). It is booted with direct kernel boot (qemu -kernel/-initrd, no
# bootloader) from a copy-on-write overlay of disk.qcow2. Nothing secret is baked in: each boot gets its identity from
# the kernel command line, read by /usr/local/sbin/phoenix-vm-init (unit phoenix-vm-init.service):
#   phoenix.hostname=NAME  phoenix.ip=ADDR/PREFIX  phoenix.key=BASE64(authorized_keys line)
# SSH host keys and /etc/machine-id are generated at first boot, so VMs from one disk differ.
#
# Caching: the output directory is ${PHOENIX_CACHE:-$HOME/.cache/phoenix}/vm/<key>, <key> being a
# hash of this script's text and SUITE/MIRROR; an existing, complete directory is reused.
# FORCE=1 rebuilds. Needs root (debootstrap) and debootstrap, e2fsprogs, qemu-utils
# (scripts/vm-deps.sh installs them).
#
# Environment: SUITE (bookworm)  MIRROR (http://deb.debian.org/debian)
#              DEB_CACHE (/var/cache/phoenix/debootstrap)  DISK_SIZE (4G)
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DEB_CACHE=${DEB_CACHE:-/var/cache/phoenix/debootstrap}
DISK_SIZE=${DISK_SIZE:-4G}
CACHE=${PHOENIX_CACHE:-$HOME/.cache/phoenix}/vm
PACKAGES=linux-image-amd64,initramfs-tools,systemd-sysv,udev,kmod,openssh-server,docker.io,apparmor,iproute2,iptables,ca-certificates,procps,python3

log() { echo "vm/build.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

KEY=$({ cat "$SELF"; echo "$SUITE $MIRROR $DISK_SIZE"; } | sha256sum | cut -c1-16)
OUT=$CACHE/$KEY
if [ "${FORCE:-0}" != 1 ] && [ -f "$OUT/complete" ]; then
  log "cached: $OUT"
  echo "$OUT"; exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root (debootstrap)"
for tool in debootstrap:debootstrap mkfs.ext4:e2fsprogs qemu-img:qemu-utils; do
  command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} missing: apt-get install ${tool#*:} (scripts/vm-deps.sh)"
done

t0=$SECONDS
mkdir -p "$CACHE" "$DEB_CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
log "debootstrap $SUITE with $PACKAGES (log: $WORK/debootstrap.log)"
if ! debootstrap --variant=minbase --cache-dir="$DEB_CACHE" --include="$PACKAGES" \
      "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2
  die "debootstrap failed"
fi

# --- configuration of the image -----------------------------------------------------------------
echo "/dev/vda / ext4 rw,relatime,errors=remount-ro 0 0" > "$ROOT/etc/fstab"
echo phoenix-vm > "$ROOT/etc/hostname"
: > "$ROOT/etc/resolv.conf"   # debootstrap copied the build host's resolver; the VMs have none
: > "$ROOT/etc/machine-id"; rm -f "$ROOT/var/lib/dbus/machine-id"
rm -f "$ROOT"/etc/ssh/ssh_host_*
sed -i 's/^root:[^:]*:/root:*:/' "$ROOT/etc/shadow"   # no password login, keys only
install -d -m 700 "$ROOT/root/.ssh"
cat > "$ROOT/etc/ssh/sshd_config.d/phoenix.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CONF

cat > "$ROOT/usr/local/sbin/phoenix-vm-init" <<'INIT'
#!/bin/sh
# Identity and network of this VM from the kernel command line (see images/vm/build.sh).
set -eu
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^phoenix\.$1=//p" | tail -n 1; }
name=$(arg hostname); ip=$(arg ip); key=$(arg key)
[ -n "$name" ] && { echo "$name" > /etc/hostname; hostname "$name"; \
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" > /etc/hosts; }
modprobe virtio_net 2>/dev/null || true
i=0; until [ -e /sys/class/net/eth0 ]; do i=$((i+1)); [ $i -le 300 ] || exit 1; sleep 0.1; done
ip link set lo up
ip link set eth0 up
[ -n "$ip" ] && ip addr replace "$ip" dev eth0
[ -n "$key" ] && { echo "$key" | base64 -d > /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys; }
ssh-keygen -A >/dev/null
echo "phoenix-vm-init: $name $ip ready" > /dev/kmsg || true
INIT
chmod 755 "$ROOT/usr/local/sbin/phoenix-vm-init"
cat > "$ROOT/etc/systemd/system/phoenix-vm-init.service" <<'UNIT'
[Unit]
Description=Phoenix test VM identity and network (kernel command line)
DefaultDependencies=no
After=local-fs.target
Before=network.target network-online.target ssh.service docker.service containerd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/phoenix-vm-init

[Install]
WantedBy=multi-user.target
UNIT
chroot "$ROOT" systemctl enable phoenix-vm-init.service ssh.service docker.service >/dev/null 2>&1
# Nothing in the VM may look for the network outside its test subnet, nor wait for it.
chroot "$ROOT" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  man-db.timer dpkg-db-backup.timer systemd-networkd-wait-online.service >/dev/null 2>&1 || true
# A small initramfs with only what a QEMU virtio machine needs to mount / (and its NIC, so the
# network is up without waiting for udev's coldplug): boots much faster, above all without KVM.
printf 'MODULES=list\nCOMPRESS=zstd\n' > "$ROOT/etc/initramfs-tools/conf.d/phoenix-vm"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >> "$ROOT/etc/initramfs-tools/modules"
chroot "$ROOT" update-initramfs -c -k all >"$WORK/initramfs.log" 2>&1 \
  || chroot "$ROOT" update-initramfs -u -k all >>"$WORK/initramfs.log" 2>&1 \
  || { tail -n 20 "$WORK/initramfs.log" >&2; die "update-initramfs failed"; }
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old

# --- disk, kernel, initrd -----------------------------------------------------------------------
cp "$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -n 1)" "$WORK/vmlinuz"
cp "$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -n 1)" "$WORK/initrd.img"
log "mkfs.ext4 -d (size $DISK_SIZE)"
mkfs.ext4 -q -F -L phoenix-root -d "$ROOT" "$WORK/disk.raw" "$DISK_SIZE"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
rm -rf "$WORK/disk.raw" "$ROOT"
printf 'suite=%s\nmirror=%s\npackages=%s\nbuilt=%s\nseconds=%s\n' "$SUITE" "$MIRROR" "$PACKAGES" \
  "$(date -u +%FT%TZ)" $((SECONDS - t0)) > "$WORK/manifest"
touch "$WORK/complete"
rm -rf "$OUT"; mv "$WORK" "$OUT"; trap - EXIT
log "built $OUT in $((SECONDS - t0)) s"
echo "$OUT"

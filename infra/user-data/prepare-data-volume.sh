#!/bin/bash
# Prepares the data volume on every boot, idempotently:
#   - formats the device (ext4) only when blkid finds nothing at all on it; a device holding a filesystem is
#     always mounted as it is, and anything else blkid recognises (a partition table, swap, RAID member...)
#     stops the script rather than risk someone's data;
#   - keeps exactly one fstab entry for the mount point, by UUID and with nofail (so a missing volume never
#     blocks boot; the compose unit and Docker itself require the mount instead);
#   - mounts it, refusing when something else is already mounted there;
#   - grows an ext4 filesystem to the size of the device (after the volume was enlarged).
# Usage: prepare-data-volume.sh DEVICE MOUNT_POINT [FSTAB]   (FSTAB defaults to /etc/fstab)
set -euo pipefail

log() { echo "prepare-data-volume: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
  echo "usage: $0 DEVICE MOUNT_POINT [FSTAB]" >&2
  exit 2
fi
device=$(readlink -f -- "$1")
mount_point=$2
fstab=${3:-/etc/fstab}

[ -b "$device" ] || die "$1 is not a block device"
case "$mount_point" in
  /*) ;;
  *) die "the mount point must be an absolute path (got '$mount_point')" ;;
esac
mount_point=${mount_point%/}
[ -n "$mount_point" ] || die "refusing to use / as the mount point"

# Low-level probe (no cache). blkid exits 2 when it finds nothing, which set -e must not treat as failure.
probe() {
  local rc=0
  blkid -p -o export -- "$device" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    die "blkid failed on $device (exit $rc)"
  fi
}
field() { sed -n "s/^$1=//p" <<<"$2"; }

info=$(probe)
if [ -z "$info" ]; then
  log "no filesystem or partition table on $device: creating ext4"
  mkfs.ext4 -q -L erp-data -- "$device"
  info=$(probe)
fi

fs_type=$(field TYPE "$info")
usage=$(field USAGE "$info")
uuid=$(field UUID "$info")
if [ "$usage" != filesystem ] || [ -z "$fs_type" ] || [ -z "$uuid" ]; then
  die "$device holds something that is not a mountable filesystem (blkid: $(tr '\n' ' ' <<<"$info")); refusing to format or mount it"
fi
log "$device holds $fs_type (UUID=$uuid)"

# Exactly one entry for the mount point: drop every other line that mounts there, keep everything else.
entry="UUID=$uuid $mount_point $fs_type defaults,nofail 0 2"
current=""
[ -e "$fstab" ] && current=$(cat -- "$fstab")
wanted=$(awk -v mp="$mount_point" '$0 ~ /^[[:space:]]*#/ || NF < 2 || $2 != mp' <<<"$current")
wanted=$(printf '%s\n%s' "$wanted" "$entry" | sed '/./,$!d')
if [ "$wanted" != "$current" ]; then
  tmp=$(mktemp "$(dirname -- "$fstab")/.fstab.XXXXXX")
  printf '%s\n' "$wanted" >"$tmp"
  if [ -e "$fstab" ]; then chmod --reference="$fstab" -- "$tmp"; else chmod 0644 -- "$tmp"; fi
  mv -f -- "$tmp" "$fstab"
  log "wrote the $mount_point entry to $fstab"
fi

mkdir -p -- "$mount_point"
if mountpoint -q -- "$mount_point"; then
  [ "$(mountpoint -d -- "$mount_point")" = "$(mountpoint -x -- "$device")" ] ||
    die "$mount_point is already a mount point of another device"
  log "$device is already mounted at $mount_point"
else
  mount -t "$fs_type" -o defaults -- "$device" "$mount_point"
  log "mounted $device at $mount_point"
fi

if [ "$fs_type" = ext4 ]; then
  resize2fs -- "$device" >/dev/null 2>&1 || log "warning: resize2fs $device failed; the filesystem keeps its size"
fi

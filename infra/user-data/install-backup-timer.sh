#!/bin/bash
# Installs (or updates) the systemd timer that runs the Qdrant snapshot backup inside the api container:
#   docker compose --project-directory APP_DIR exec -T api node dist/scripts/ops.js backup
# Usage: install-backup-timer.sh SCHEDULE APP_DIR [UNIT_DIR]
#   SCHEDULE  a systemd OnCalendar expression, e.g. '*-*-* 02:30:00' (UTC on the instance)
#   UNIT_DIR  where the units go (default /etc/systemd/system)
# SYSTEMCTL may name another systemctl (tests use a recorder). Idempotent: unchanged units are not rewritten
# and systemd is only reloaded when something changed.
set -euo pipefail

die() {
  echo "install-backup-timer: error: $*" >&2
  exit 1
}
if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
  echo "usage: $0 SCHEDULE APP_DIR [UNIT_DIR]" >&2
  exit 2
fi
schedule=$1
app_dir=$2
unit_dir=${3:-/etc/systemd/system}
systemctl=${SYSTEMCTL:-systemctl}
readonly name=erp-image-search-backup

# The schedule lands inside a unit file: allow only what calendar expressions use (no newlines, no '%').
[[ "$schedule" =~ ^[A-Za-z0-9*:,./~\ -]+$ ]] || die "schedule '$schedule' has characters a calendar expression does not use"
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze calendar "$schedule" >/dev/null 2>&1 || die "systemd does not accept the calendar expression '$schedule'"
fi
[[ "$app_dir" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "APP_DIR must be an absolute path of plain characters (got '$app_dir')"
docker=$(command -v docker || echo /usr/bin/docker)

service="[Unit]
Description=ERP image search: Qdrant snapshot backup
Requires=docker.service
After=docker.service erp-image-search.service
RequiresMountsFor=/data

[Service]
Type=oneshot
ExecStart=$docker compose --project-directory $app_dir exec -T api node dist/scripts/ops.js backup
"
timer="[Unit]
Description=ERP image search: daily Qdrant snapshot backup

[Timer]
OnCalendar=$schedule
Persistent=true
RandomizedDelaySec=120

[Install]
WantedBy=timers.target
"

changed=0
write_unit() { # FILE CONTENT
  if [ ! -e "$1" ] || [ "$(cat -- "$1")" != "${2%$'\n'}" ]; then
    local tmp
    tmp=$(mktemp "$unit_dir/.$name.XXXXXX")
    printf '%s' "$2" >"$tmp"
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$1"
    changed=1
  fi
}
mkdir -p -- "$unit_dir"
write_unit "$unit_dir/$name.service" "$service"
write_unit "$unit_dir/$name.timer" "$timer"

if [ "$changed" = 1 ]; then
  "$systemctl" daemon-reload
fi
"$systemctl" enable --now "$name.timer"
echo "install-backup-timer: $name.timer runs '$schedule'" >&2

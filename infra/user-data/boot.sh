#!/bin/bash
# Second stage of every boot, run by bootstrap.sh from the freshly downloaded app. Every step is idempotent:
# data volume (attach, prepare, mount, directories), Docker, the compose .env with the secrets and settings,
# the backup timer, then the compose unit, which (re)builds and starts the service only when /data is really
# mounted.
# Usage: boot.sh REGION DEPLOYMENT_ENV   (DEPLOYMENT_ENV: the deployment's values, see deployment-env.sh)
set -euo pipefail

readonly APP_DIR=/opt/erp-image-search/app DATA=/data CONF_DIR=/etc/erp-image-search UNITS=/etc/systemd/system
if [ "$#" -ne 2 ]; then
  echo "usage: $0 REGION DEPLOYMENT_ENV" >&2
  exit 2
fi
region=$1 deployment=$2
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=infra/user-data/deployment-env.sh
. "$here/deployment-env.sh"
volume_id=$(deployment_value "$deployment" VOLUME_ID)
schedule=$(deployment_value "$deployment" BACKUP_SCHEDULE)
step() { echo "--- boot: $*"; }

step "data volume $volume_id"
device=$(bash "$here/attach-data-volume.sh" "$volume_id" "$region")
bash "$here/prepare-data-volume.sh" "$device" "$DATA" /etc/fstab
systemctl daemon-reload # fstab may have changed: let systemd generate data.mount
bash "$here/make-data-dirs.sh" "$DATA"

step "docker"
install -D -m 0644 "$here/docker-requires-data.conf" "$UNITS/docker.service.d/10-erp-image-search.conf"
systemctl daemon-reload
bash "$here/install-docker.sh"

step "compose environment"
install -d -m 0700 "$CONF_DIR"
bash "$here/write-compose-env.sh" "$APP_DIR/.env" "$region" "$deployment" "$CONF_DIR/extra.env"

step "backup timer"
bash "$here/install-backup-timer.sh" "$schedule" "$APP_DIR"

step "service"
install -m 0644 "$here/erp-image-search.service" "$UNITS/erp-image-search.service"
systemctl daemon-reload
systemctl enable erp-image-search.service
systemctl reload-or-restart erp-image-search.service
step "done: $(docker compose --project-directory "$APP_DIR" ps --format '{{.Service}}={{.State}}' | tr '\n' ' ')"

#!/bin/bash
# Creates the service's directories on the data volume with the owners the containers run as:
#   images, backups, models  -> the api container's user (uid/gid 10001, see service/Dockerfile)
#   qdrant, qdrant-snapshots -> the qdrant "-unprivileged" image's user (uid/gid 1000)
# Only the directories themselves are changed, never their contents. Used by the EC2 boot script and by the
# one-shot "data-dirs" service of docker-compose.yml (so a fresh `docker compose up` works on any host).
# Usage: make-data-dirs.sh DATA_DIR
set -euo pipefail

readonly API_ID=10001 QDRANT_ID=1000

if [ "$#" -ne 1 ]; then
  echo "usage: $0 DATA_DIR" >&2
  exit 2
fi
data_dir=${1%/}
[ -d "$data_dir" ] || { echo "make-data-dirs: $1 is not a directory" >&2; exit 1; }

make_dir() { # NAME UID
  local dir="$data_dir/$1"
  mkdir -p -- "$dir"
  chown "$2:$2" -- "$dir"
  chmod 0750 -- "$dir"
}

make_dir images "$API_ID"
make_dir backups "$API_ID"
make_dir models "$API_ID"
make_dir qdrant "$QDRANT_ID"
make_dir qdrant-snapshots "$QDRANT_ID"
echo "make-data-dirs: $data_dir/{images,backups,models} owned by $API_ID, $data_dir/{qdrant,qdrant-snapshots} by $QDRANT_ID" >&2

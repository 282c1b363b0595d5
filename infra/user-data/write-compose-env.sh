#!/bin/bash
# Writes the compose .env of the app directory from Secrets Manager (the instance role may read exactly these
# two secrets) plus the non-secret deployment values. The file is root-owned, mode 600, and replaced in one
# step, so a reader never sees half of it. Lines from an optional operator file (e.g. IMAGE_URL_ALLOW=...)
# are appended unchanged.
# Usage: write-compose-env.sh ENV_FILE REGION API_KEY_SECRET_ID QDRANT_KEY_SECRET_ID VOLUME_ID [EXTRA_ENV_FILE]
set -euo pipefail

die() {
  echo "write-compose-env: error: $*" >&2
  exit 1
}
if [ "$#" -lt 5 ] || [ "$#" -gt 6 ]; then
  echo "usage: $0 ENV_FILE REGION API_KEY_SECRET_ID QDRANT_KEY_SECRET_ID VOLUME_ID [EXTRA_ENV_FILE]" >&2
  exit 2
fi
env_file=$1 region=$2 api_secret=$3 qdrant_secret=$4 volume_id=$5 extra=${6:-}

secret() { # SECRET_ID NAME
  local value
  value=$(aws secretsmanager get-secret-value --region "$region" --secret-id "$1" --query SecretString --output text) ||
    die "cannot read the secret for $2 ($1)"
  # Compose reads .env literally only for plain tokens; anything else could be interpolated or cut.
  [[ "$value" =~ ^[A-Za-z0-9._~+/=-]{16,512}$ ]] ||
    die "the secret for $2 must be a plain string of 16-512 characters [A-Za-z0-9._~+/=-] (not JSON)"
  printf '%s' "$value"
}
api_key=$(secret "$api_secret" IMAGE_SEARCH_API_KEY)
qdrant_key=$(secret "$qdrant_secret" QDRANT_API_KEY)

umask 077
tmp=$(mktemp "$(dirname -- "$env_file")/.env.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
{
  echo "# Written at boot by infra/user-data/write-compose-env.sh; edits are lost. Put extra settings in ${extra:-the extra env file}."
  echo "COMPOSE_PROJECT_NAME=erp-image-search"
  echo "DATA_DIR=/data"
  echo "AWS_REGION=$region"
  echo "DATA_VOLUME_ID=$volume_id"
  echo "IMAGE_SEARCH_API_KEY=$api_key"
  echo "QDRANT_API_KEY=$qdrant_key"
  if [ -n "$extra" ] && [ -f "$extra" ]; then cat -- "$extra"; fi
} >"$tmp"
chmod 0600 -- "$tmp"
if [ "$(id -u)" = 0 ]; then chown 0:0 -- "$tmp"; fi
mv -f -- "$tmp" "$env_file"
trap - EXIT
echo "write-compose-env: wrote $env_file" >&2

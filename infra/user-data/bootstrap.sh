#!/bin/bash
# First stage of every boot. The user data (infra/constructs/boot-user-data.ts) writes this file verbatim and
# the deployment's values (deployment.env), then runs it; cloud-init runs the user data on every boot.
#   1. installs the AWS CLI and unzip when missing,
#   2. downloads the app (the project directory, an S3 asset of this deployment) into /opt/erp-image-search/app,
#      replacing the previous copy in one step,
#   3. hands over to the app's own boot.sh.
# Usage: bootstrap.sh REGION ASSET_S3_URL DEPLOYMENT_ENV
set -euo pipefail

readonly BASE=/opt/erp-image-search LOG_DIR=/var/log/erp-image-search
if [ "$#" -ne 3 ]; then
  echo "usage: $0 REGION ASSET_S3_URL DEPLOYMENT_ENV" >&2
  exit 2
fi
region=$1 asset_url=$2 deployment=$3

install -d -m 0750 "$LOG_DIR"
exec > >(tee -a "$LOG_DIR/boot.log") 2>&1
echo "=== bootstrap $(date -u +%Y-%m-%dT%H:%M:%SZ) app=$asset_url"
export PATH="$PATH:/snap/bin"

if ! command -v aws >/dev/null 2>&1; then
  snap wait system seed.loaded
  snap install aws-cli --classic
fi
if ! command -v unzip >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip
fi

install -d -m 0755 "$BASE"
work=$(mktemp -d "$BASE/.download.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
aws s3 cp --region "$region" --only-show-errors "$asset_url" "$work/app.zip"
unzip -q "$work/app.zip" -d "$work/app"
[ -f "$work/app/infra/user-data/boot.sh" ] || { echo "bootstrap: the app archive has no infra/user-data/boot.sh" >&2; exit 1; }
if [ -d "$BASE/app" ]; then
  rm -rf -- "$BASE/app.old"
  mv -- "$BASE/app" "$BASE/app.old"
fi
mv -- "$work/app" "$BASE/app"
rm -rf -- "$BASE/app.old"

exec bash "$BASE/app/infra/user-data/boot.sh" "$region" "$deployment"

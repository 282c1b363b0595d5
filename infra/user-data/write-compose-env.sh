#!/bin/bash
# Writes the compose .env of the app directory: the deployment's secrets from Secrets Manager (the instance role
# may read exactly these), the service settings of the deployment, AWS_REGION and DATA_VOLUME_ID, then the lines
# of an optional operator file (e.g. IMAGE_URL_ALLOW=...), which come last and so win. The file is root-owned,
# mode 600, written to a temporary name, fsynced and renamed, so a reader never sees half of it; on any error the
# previous file stays. Secret values never reach the output.
# Usage: write-compose-env.sh ENV_FILE REGION DEPLOYMENT_ENV [EXTRA_ENV_FILE]
#   DEPLOYMENT_ENV lines used here (see infra/constructs/boot-user-data.ts):
#     VOLUME_ID=<id>, SECRET_<NAME>=<arn> (a generated token), OPERATOR_SECRET_<NAME>=<arn> (a value the operator
#     puts; none yet leaves NAME empty), SETTING_<NAME>=<value> (written as NAME='<value>').
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=infra/user-data/deployment-env.sh
. "$here/deployment-env.sh"

note() { echo "write-compose-env: $*" >&2; }
die() {
  note "error: $*"
  exit 1
}
if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
  echo "usage: $0 ENV_FILE REGION DEPLOYMENT_ENV [EXTRA_ENV_FILE]" >&2
  exit 2
fi
env_file=$1 region=$2 deployment=$3 extra=${4:-}
[ -f "$deployment" ] || die "$deployment does not exist"
volume_id=$(deployment_value "$deployment" VOLUME_ID) || exit 1

work=$(mktemp -d)
tmp=""
trap 'rm -rf -- "$work"; if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT

# fetch ARN NAME: prints the secret's value. Returns 3 when the secret exists but has no value yet.
fetch() {
  if aws secretsmanager get-secret-value --region "$region" --secret-id "$1" --query SecretString \
    --output text 2>"$work/err"; then
    return 0
  fi
  if grep -q 'ResourceNotFoundException' "$work/err" && grep -q 'secret value for staging label' "$work/err"; then
    return 3
  fi
  die "cannot read the secret for $2 ($1): $(tr '\n' ' ' <"$work/err")"
}

# A value that goes between single quotes in .env, which compose takes literally up to the first quote not
# preceded by a backslash: so no quote, no backslash at the end, no control character.
quotable() { [[ "$1" != *"'"* && "$1" != *\\ && ! "$1" =~ [[:cntrl:]] && ${#1} -le 4096 ]]; }

names=()
declare -A values=()
set_value() { # NAME RENDERED
  names+=("$1")
  values[$1]=$2
}

while IFS= read -r line || [ -n "$line" ]; do
  key=${line%%=*} value=${line#*=}
  case "$key" in
    SECRET_*)
      name=${key#SECRET_}
      rc=0
      secret=$(fetch "$value" "$name") || rc=$?
      [ "$rc" != 3 ] || die "the secret for $name ($value) has no value; put one (README: Keys and secrets)"
      [ "$rc" = 0 ] || exit 1
      # Compose reads .env literally only for plain tokens; anything else could be interpolated or cut.
      [[ "$secret" =~ ^[A-Za-z0-9._~+/=-]{16,512}$ ]] ||
        die "the secret for $name must be a plain string of 16-512 characters [A-Za-z0-9._~+/=-] (not JSON)"
      set_value "$name" "$secret"
      ;;
    OPERATOR_SECRET_*)
      name=${key#OPERATOR_SECRET_}
      rc=0
      secret=$(fetch "$value" "$name") || rc=$?
      [ "$rc" = 0 ] || [ "$rc" = 3 ] || exit 1
      if [ "$rc" = 3 ]; then
        note "$name is not set yet (README: ERPNext secrets): aws secretsmanager put-secret-value --region $region --secret-id $value --secret-string ...; then reboot"
        set_value "$name" ""
      else
        quotable "$secret" ||
          die "the secret for $name must be at most 4096 characters without quotes ('), line breaks or a final backslash; put a new value"
        set_value "$name" "'$secret'"
      fi
      ;;
    SETTING_*)
      name=${key#SETTING_}
      quotable "$value" || die "the setting $name must not contain quotes ('), line breaks or a final backslash"
      set_value "$name" "'$value'"
      ;;
  esac
done <"$deployment"

# The ERPNext connector needs its key pair: until both are put, it stays off instead of failing on every call.
if [ -n "${values[ERPNEXT_URL]:-}" ] && { [ -z "${values[ERPNEXT_API_KEY]:-}" ] || [ -z "${values[ERPNEXT_API_SECRET]:-}" ]; }; then
  note "ERPNEXT_URL is left empty (the ERPNext connector stays off) until ERPNEXT_API_KEY and ERPNEXT_API_SECRET are put"
  values[ERPNEXT_URL]=""
fi

umask 077
tmp=$(mktemp "$(dirname -- "$env_file")/.env.XXXXXX")
{
  echo "# Written at boot by infra/user-data/write-compose-env.sh; edits are lost. Put extra settings in ${extra:-the extra env file}."
  echo "COMPOSE_PROJECT_NAME=erp-image-search"
  echo "DATA_DIR=/data"
  echo "AWS_REGION=$region"
  echo "DATA_VOLUME_ID=$volume_id"
  for name in "${names[@]}"; do printf '%s=%s\n' "$name" "${values[$name]}"; done
  if [ -n "$extra" ] && [ -f "$extra" ]; then cat -- "$extra"; fi
} >"$tmp"
chmod 0600 -- "$tmp"
if [ "$(id -u)" = 0 ]; then chown 0:0 -- "$tmp"; fi
sync -- "$tmp"
mv -f -- "$tmp" "$env_file"
tmp=""
sync -- "$(dirname -- "$env_file")"
note "wrote $env_file"

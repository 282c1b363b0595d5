#!/bin/bash
# Installs Docker Engine with the compose and buildx plugins from Docker's apt repository (Ubuntu's own
# packages lag behind what `docker compose build` needs). Skips everything when compose already works.
# The repository key is checked against Docker's published fingerprint before apt trusts it.
set -euo pipefail

readonly KEY_URL=https://download.docker.com/linux/ubuntu/gpg
readonly REPO_URL=https://download.docker.com/linux/ubuntu
readonly FINGERPRINT=9DC858229FC7DD38854AE2D88D81803C0EBFCD88
readonly KEYRING=/etc/apt/keyrings/docker.asc

if docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
  echo "install-docker: docker with compose and buildx is already installed" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q ca-certificates curl gnupg

install -d -m 0755 /etc/apt/keyrings
tmp=$(mktemp)
trap 'rm -f -- "$tmp"' EXIT
curl -fsSL --retry 5 "$KEY_URL" -o "$tmp"
actual=$(gpg --show-keys --with-colons "$tmp" | awk -F: '$1 == "fpr" { print $10; exit }')
[ "$actual" = "$FINGERPRINT" ] || {
  echo "install-docker: error: Docker's key has fingerprint '$actual', expected $FINGERPRINT" >&2
  exit 1
}
install -m 0644 "$tmp" "$KEYRING"

# shellcheck source=/dev/null # os-release is the system's, not ours
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
echo "deb [arch=$(dpkg --print-architecture) signed-by=$KEYRING] $REPO_URL $codename stable" >/etc/apt/sources.list.d/docker.list
apt-get update -q
apt-get install -y -q docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
systemctl enable --now docker.service
docker compose version >&2

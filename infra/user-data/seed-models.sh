#!/bin/bash
# Puts the models baked into the api image onto the data volume the first time. docker-compose.yml's one-shot
# "models" service runs it (as the api's user, without network) before the api starts: for every NAME.onnx in
# SRC_DIR with its sidecar NAME.json, both are copied into DST_DIR unless DST_DIR/NAME.onnx exists already.
# Copied, not used from the image: migrations need the old and the new model side by side in one writable
# directory (the API loads a model by name from the directory of MODEL_PATH), and a rebuilt image (other weights,
# another torch) must never swap the model the stored vectors were made with. So nothing is ever overwritten; a
# volume model that differs from the image's is reported and kept. Each file goes to a temporary name, is fsynced
# and renamed, the sidecar first, so a NAME.onnx on the volume always has its NAME.json.
# Usage: seed-models.sh SRC_DIR DST_DIR
set -euo pipefail

log() { echo "seed-models: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
if [ "$#" -ne 2 ]; then
  echo "usage: $0 SRC_DIR DST_DIR" >&2
  exit 2
fi
src=${1%/} dst=${2%/}
[ -d "$src" ] || die "$src is not a directory"
{ [ -d "$dst" ] && [ -w "$dst" ]; } || die "$dst is not a writable directory (docker-compose.yml mounts DATA_DIR/models there)"

tmp=""
trap 'if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT
copy() { # FILE TARGET
  tmp=$(mktemp "$dst/.seed.XXXXXX")
  cp -- "$1" "$tmp"
  chmod 0644 -- "$tmp"
  sync -- "$tmp"
  mv -f -- "$tmp" "$2"
  tmp=""
}

shopt -s nullglob
models=("$src"/*.onnx)
[ "${#models[@]}" -gt 0 ] || die "no model (*.onnx) in $src"
for model in "${models[@]}"; do
  name=$(basename -- "$model" .onnx)
  [ -f "$src/$name.json" ] || die "$model has no sidecar $src/$name.json"
  if [ -e "$dst/$name.onnx" ]; then
    if cmp -s -- "$model" "$dst/$name.onnx"; then
      log "$name: already on the volume"
    else
      log "$name: kept the volume's $name.onnx, which differs from the image's (the stored vectors were made with it)"
    fi
    continue
  fi
  copy "$src/$name.json" "$dst/$name.json"
  copy "$model" "$dst/$name.onnx"
  log "$name: copied to $dst"
done
sync -- "$dst"

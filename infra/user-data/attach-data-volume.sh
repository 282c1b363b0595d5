#!/bin/bash
# Attaches the data volume to this instance and prints its device path (NVMe, found by volume id).
#
# Why the instance attaches the volume itself (no AWS::EC2::VolumeAttachment, no creation policy): when
# CloudFormation replaces the instance it creates the new one first and terminates the old one only in the
# cleanup phase, after the update succeeded. A template attachment to the new instance fails ("volume in use"),
# and a creation policy waiting for the mount would wait for a volume that is only released after the wait:
# a deadlock. Here the new instance simply keeps retrying until the old one has released the volume.
#
# Usage: attach-data-volume.sh VOLUME_ID REGION [TIMEOUT_SECONDS]   (default 2700)
# Test seams: IMDS_ENDPOINT (default http://169.254.169.254), BY_ID_DIR (default /dev/disk/by-id),
# POLL_SECONDS (default 10).
set -euo pipefail

log() { echo "attach-data-volume: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
  echo "usage: $0 VOLUME_ID REGION [TIMEOUT_SECONDS]" >&2
  exit 2
fi
volume_id=$1
region=$2
timeout=${3:-2700}
[[ "$volume_id" =~ ^vol-[0-9a-f]{8,17}$ ]] || die "'$volume_id' is not a volume id"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "TIMEOUT_SECONDS must be a whole number"
imds=${IMDS_ENDPOINT:-http://169.254.169.254}
poll=${POLL_SECONDS:-10}
# On Nitro instances the EBS NVMe controller's serial is the volume id without its dash; udev links it here.
link="${BY_ID_DIR:-/dev/disk/by-id}/nvme-Amazon_Elastic_Block_Store_${volume_id/-/}"

token=$(curl -sSf --max-time 5 -X PUT "$imds/latest/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
instance_id=$(curl -sSf --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id")

deadline=$((SECONDS + timeout))
while :; do
  if [ -e "$link" ]; then
    readlink -f -- "$link"
    exit 0
  fi
  if ! status=$(aws ec2 describe-volumes --region "$region" --volume-ids "$volume_id" \
    --query 'Volumes[0].[State, Attachments[0].InstanceId]' --output text); then
    log "describe-volumes failed; retrying"
  else
    read -r state holder <<<"$status"
    if [ "$state" = available ]; then
      log "attaching $volume_id to $instance_id"
      # Losing a race to another instance is not fatal: the next round sees who holds it.
      aws ec2 attach-volume --region "$region" --volume-id "$volume_id" --instance-id "$instance_id" \
        --device /dev/sdf >/dev/null || log "attach-volume failed; retrying"
    elif [ "$holder" = "$instance_id" ]; then
      log "$volume_id is attached here; waiting for its device"
    else
      log "$volume_id is $state, held by $holder; waiting for it to be released (instance replacement in progress?)"
    fi
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "$volume_id did not become usable within ${timeout}s; see the runbook (README: replacing the instance)"
  fi
  sleep "$poll"
done

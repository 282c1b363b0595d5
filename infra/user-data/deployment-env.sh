#!/bin/bash
# Reads one value of the deployment's deployment.env (written by the user data, see
# infra/constructs/boot-user-data.ts). Sourced by boot.sh and write-compose-env.sh. The file is parsed line by
# line, never sourced, so a value is taken literally whatever it holds.

# deployment_value FILE NAME: prints the value of NAME; without such a line says so and returns 1.
deployment_value() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ "$line" == "$2="* ]]; then
      printf '%s' "${line#*=}"
      return 0
    fi
  done <"$1"
  echo "deployment.env ($1) has no $2 line" >&2
  return 1
}

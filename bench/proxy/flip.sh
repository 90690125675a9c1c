#!/usr/bin/env bash
# Drives the no-loss phase against a running Cutover proxy's admin API: every 2 s flips the
# prod listener's weights between blue and green, and alternately registers a third target in
# green or deregisters it (it then drains). Runs until killed.
# usage: flip.sh ADMIN_URL EXTRA_TARGET BLUE_TARGET GREEN_TARGET
set -u
admin=$1 extra=$2 blue=$3 green=$4
i=0
put() { curl -fsS -X PUT -H 'content-type: application/json' -d "$2" "$admin$1" >/dev/null || echo "flip: PUT $1 failed" >&2; }
while true; do
  if (( i % 2 == 0 )); then
    put /v1/listeners/prod/weights '{"weights":{"blue":0,"green":100}}'
    put /v1/target-groups/green/targets "{\"targets\":[\"$green\",\"$extra\"]}"
  else
    put /v1/listeners/prod/weights '{"weights":{"blue":100,"green":0}}'
    put /v1/target-groups/green/targets "{\"targets\":[\"$green\"]}"
  fi
  i=$((i + 1))
  sleep 2
done

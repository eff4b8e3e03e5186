#!/usr/bin/env bash
# Runs a command on one host of the lab: exec.sh <prov|relay|rooma|roomb> <command...>
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
host="$1"; shift
host_octet "$host" >/dev/null
exec ip netns exec "$P-$host" "$@"

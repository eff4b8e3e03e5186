#!/usr/bin/env bash
# Removes the fault lab of this prefix (namespaces, veths, the shaper, the route). Safe to repeat.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
set +e
if [ -f "$STATE/shaper.pid" ]; then kill "$(cat "$STATE/shaper.pid")" 2>/dev/null; fi
for h in $HOSTS; do ip netns pids "$P-${h%%:*}" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$P-${h%%:*}" 2>/dev/null; done
ip netns pids "$CORE" 2>/dev/null | xargs -r kill 2>/dev/null
ip netns del "$CORE" 2>/dev/null
ip route del "10.$O.0.0/16" 2>/dev/null
ip link del "$P-ctl" 2>/dev/null
rm -rf "$STATE"
exit 0

#!/usr/bin/env bash
# Sets the fault on one host's link (both directions):
#   fault.sh <host> clear
#   fault.sh <host> loss <percent>            e.g. loss 10
#   fault.sh <host> jitter <ms> [delay <ms>]  delay defaults to the jitter (no negative delays)
#   fault.sh <host> delay <ms>
#   fault.sh <host> partition                 silent: every packet dropped until clear
#   fault.sh <host> flap <seconds>            the host's interface goes down for <seconds>, then up
#                                             (a real link flap: routes go and are put back)
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
host="$1"; what="$2"; shift 2
n="$(host_octet "$host")"
loss=0; delay=0; jitter=0; down=false
case "$what" in
  clear) ;;
  loss) loss="$1" ;;
  jitter) jitter="$1"; delay="${3:-$1}" ;;
  delay) delay="$1" ;;
  partition) down=true ;;
  flap)
    ip -n "$P-$host" link set eth0 down
    sleep "$1"
    ip -n "$P-$host" link set eth0 up
    ip -n "$P-$host" route replace default via "10.$O.$n.1"
    exit 0 ;;
  *) echo "unknown fault $what" >&2; exit 2 ;;
esac
if [ "$(mode)" = netem ]; then
  args=()
  [ "$down" = true ] && args+=(loss 100%)
  [ "$loss" != 0 ] && args+=(loss "$loss%")
  [ "$delay" != 0 ] && args+=(delay "${delay}ms")
  [ "$jitter" != 0 ] && args+=("${jitter}ms")
  for side in "$CORE:$P-c-$host" "$P-$host:eth0"; do
    ns="${side%%:*}"; dev="${side##*:}"
    ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
    if [ ${#args[@]} -gt 0 ]; then ip netns exec "$ns" tc qdisc add dev "$dev" root netem "${args[@]}"; fi
  done
elif [ "$(mode)" = shaper ]; then
  python3 - "$STATE/faults.json" "$host" "$loss" "$delay" "$jitter" "$down" <<'PY'
import json, os, sys
path, host, loss, delay, jitter, down = sys.argv[1:]
with open(path) as f:
    faults = json.load(f)
faults[host] = {'loss': float(loss) / 100, 'delayMs': float(delay), 'jitterMs': float(jitter), 'down': down == 'true'}
with open(path + '.tmp', 'w') as f:
    json.dump(faults, f)
os.replace(path + '.tmp', path)
PY
  sleep 0.1 # the shaper polls every 50 ms
else
  echo "no lab (run scripts/netns/setup.sh)" >&2; exit 1
fi

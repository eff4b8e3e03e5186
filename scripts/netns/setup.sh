#!/usr/bin/env bash
# Creates the fault lab (idempotent: an old one of the same prefix is removed first). Prints the mode:
# "netem" when the kernel has sch_netem (faults are tc qdiscs on both ends of a host's link), else
# "shaper" (scripts/netns/shaper.py, a userspace netem on a TUN device in the router namespace).
# Needs root and iproute2 (+ python3 for the shaper).
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
bash "$here/teardown.sh" >/dev/null 2>&1 || true
mkdir -p "$STATE"
ip netns add "$CORE"
ip -n "$CORE" link set lo up
ip netns exec "$CORE" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward;
  for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > "$f"; done;
  for f in /proc/sys/net/ipv4/conf/*/send_redirects; do echo 0 > "$f"; done'
for h in $HOSTS; do
  name="${h%%:*}"; n="${h##*:}"; ns="$P-$name"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "$P-h-$name" type veth peer name "$P-c-$name"
  ip link set "$P-h-$name" netns "$ns"
  ip -n "$ns" link set "$P-h-$name" name eth0
  ip link set "$P-c-$name" netns "$CORE"
  ip -n "$ns" addr add "10.$O.$n.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$CORE" addr add "10.$O.$n.1/24" dev "$P-c-$name"
  ip -n "$CORE" link set "$P-c-$name" up
  ip -n "$ns" route add default via "10.$O.$n.1"
done
# The orchestrator's own link (never faulted).
ip link add "$P-ctl" type veth peer name "$P-c-ctl"
ip link set "$P-c-ctl" netns "$CORE"
ip addr add "10.$O.9.2/24" dev "$P-ctl"
ip link set "$P-ctl" up
ip -n "$CORE" addr add "10.$O.9.1/24" dev "$P-c-ctl"
ip -n "$CORE" link set "$P-c-ctl" up
ip route replace "10.$O.0.0/16" via "10.$O.9.1" dev "$P-ctl"
if ip netns exec "$CORE" tc qdisc add dev "$P-c-ctl" root netem delay 0ms 2>/dev/null; then
  ip netns exec "$CORE" tc qdisc del dev "$P-c-ctl" root
  echo netem > "$STATE/mode"
else
  # No sch_netem in this kernel (CONFIG_NET_SCH_NETEM unset, no module): userspace shaper.
  echo shaper > "$STATE/mode"
  echo '{}' > "$STATE/faults.json"
  ip -n "$CORE" tuntap add dev "$TUN" mode tun
  ip -n "$CORE" link set "$TUN" up
  hosts=""; for h in $HOSTS; do hosts="$hosts${hosts:+,}${h%%:*}=${h##*:}"; done
  ip netns exec "$CORE" python3 "$here/shaper.py" --tun "$TUN" --control "$STATE/faults.json" \
    --hosts "$hosts,ctl=9" >"$STATE/shaper.log" 2>&1 &
  echo $! > "$STATE/shaper.pid"
  for _ in $(seq 50); do [ -f "$STATE/faults.json.stats" ] && break; sleep 0.1; done
  [ -f "$STATE/faults.json.stats" ] || { echo "shaper did not start:" >&2; cat "$STATE/shaper.log" >&2; exit 1; }
  # Everything forwarded goes through the TUN (the shaper), and comes back out of it to the main table.
  ip -n "$CORE" route add default dev "$TUN" table 100
  ip -n "$CORE" rule add pref 100 iif "$TUN" lookup main
  ip -n "$CORE" rule add pref 200 lookup 100
fi
mode

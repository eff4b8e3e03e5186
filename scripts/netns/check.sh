#!/usr/bin/env bash
# Can this machine run the lab? Prints "ok netem", "ok shaper" or "no: <reason>" (exit 1).
set -u
[ "$(id -u)" = 0 ] || { echo "no: not root"; exit 1; }
command -v ip >/dev/null || { echo "no: iproute2 (ip) missing"; exit 1; }
probe="srprobe$$"
ip netns add "$probe" 2>/dev/null || { echo "no: ip netns add fails here"; exit 1; }
ip -n "$probe" link add vprobe0 type veth peer name vprobe1 2>/dev/null || { ip netns del "$probe"; echo "no: veth unsupported"; exit 1; }
if ip netns exec "$probe" tc qdisc add dev vprobe0 root netem delay 1ms 2>/dev/null; then r="ok netem"
elif [ -c /dev/net/tun ] && command -v python3 >/dev/null; then r="ok shaper"
else ip netns del "$probe"; echo "no: neither sch_netem nor /dev/net/tun + python3"; exit 1; fi
ip netns del "$probe"
echo "$r"

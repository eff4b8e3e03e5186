# Shared names for the Sealroom fault lab (sourced by the other scripts in scripts/netns).
# SRNET_PREFIX (default "sr") and SRNET_OCTET (default 201) let two labs coexist (e.g. a test and a run).
# Hosts: <prefix>-prov 10.<octet>.1.2, <prefix>-relay .2.2, <prefix>-rooma .3.2, <prefix>-roomb .4.2,
# each on its own veth to the router namespace <prefix>-core (10.<octet>.N.1); the root namespace
# (the orchestrator) reaches them through <prefix>-ctl 10.<octet>.9.2.
set -euo pipefail
P="${SRNET_PREFIX:-sr}"
O="${SRNET_OCTET:-201}"
HOSTS="prov:1 relay:2 rooma:3 roomb:4"
CORE="$P-core"
STATE="/run/sealroom-netns/$P"
TUN="$P-tun"
host_octet() { for h in $HOSTS; do [ "${h%%:*}" = "$1" ] && { echo "${h##*:}"; return; }; done; echo "unknown host $1" >&2; exit 2; }
host_ip() { echo "10.$O.$(host_octet "$1").2"; }
mode() { cat "$STATE/mode" 2>/dev/null || echo none; }

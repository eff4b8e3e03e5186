#!/bin/sh
# Starts Chromium in a fresh network namespace whose only interface is lo: WebRTC between two pages
# of this browser can then only ever use 127.0.0.1/::1 (without it, Chromium also sends ICE checks
# from the host's other interfaces to loopback candidates). Used by test/browser-participant.test.ts
# for browser-to-browser calls; needs root or unprivileged user namespaces for `unshare --net`.
exec unshare --net sh -c 'ip link set lo up && exec "${SEALROOM_CHROMIUM:-/usr/bin/chromium}" "$@"' chromium "$@"

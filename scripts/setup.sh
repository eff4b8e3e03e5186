#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, npm packages, native builds, the build.
# Each step is skipped when already done, so `npm start` and `npm test` can always call it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. Debian packages.
mapfile -t wanted < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "[setup] need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 1b. arm64 package lists: the arm64 release cross build (scripts/release/cross-build.ts) downloads
#     arm64 GStreamer/glib/libc .debs with `apt-get download` and unpacks them into a sysroot under
#     $TMPDIR; nothing arm64 is installed (installing libgstreamer-plugins-base1.0-dev:arm64 would make
#     apt remove the amd64 one and upgrade ~30 amd64 libraries in lockstep).
if [ "$(dpkg --print-architecture)" = amd64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  say "adding arm64 package lists (dpkg --add-architecture arm64; nothing arm64 gets installed)"
  sudo=""
  [ "$(id -u)" != 0 ] && sudo="sudo"
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi

# 2. npm packages, at the versions in package-lock.json. Install scripts are skipped and the native
#    builds are done explicitly below, so what gets compiled (and against which headers) is visible.
#    `npm ci`: exactly the lock, which lists every platform package for linux x64 and arm64 (glibc
#    and musl), so it never rewrites the lock and refuses one that is out of sync with package.json.
stamp=node_modules/.sealroom-installed
stale=0
[ -f "$stamp" ] || stale=1
for f in package-lock.json package.json patches/*.patch; do
  [ -e "$f" ] && [ "$f" -nt "$stamp" ] && stale=1
done
if [ "$stale" = 1 ]; then
  say "installing npm packages from package-lock.json"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  # Our fixes to dependencies (patches/, e.g. gstreamer-superficial's GValue leaks) go in before the
  # native build, so the addon is compiled from the patched source.
  say "applying patches/ to dependencies"
  npx patch-package --error-on-fail
  say "building native addons: better-sqlite3, gstreamer-superficial (about a minute)"
  npm rebuild better-sqlite3 gstreamer-superficial --foreground-scripts=false --loglevel=error
  touch "$stamp"
fi

# 3. Build (TypeScript to dist/, kiosk UI bundle).
say "building"
npx tsc -p tsconfig.build.json
if [ -f scripts/build-kiosk.mjs ]; then node scripts/build-kiosk.mjs; fi
if [ -f scripts/build-web.mjs ]; then node scripts/build-web.mjs; fi
if [ -f scripts/build-console.mjs ]; then node scripts/build-console.mjs; fi
say "ready"

#!/usr/bin/env bash
# Builds the sealroom .deb from a built tree (npm run build + node scripts/build-kiosk.mjs):
#   device/system/build-deb.sh [--out DIR] [--without-node-modules]
# Layout: /usr/lib/sealroom/{package.json,dist,node_modules,pipelines}, /usr/bin/sealroom,
# /lib/systemd/system/*.service, /lib/udev/rules.d/60-sealroom-hid.rules, /etc/default/sealroom.
# node_modules are the production dependencies with their native builds (node-hid's prebuilt,
# better-sqlite3 and gstreamer-superficial compiled by scripts/setup.sh), so build on the target
# Debian release and architecture.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/dist/deb"
with_modules=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --without-node-modules) with_modules=0; shift ;;
    *) echo "usage: $0 [--out DIR] [--without-node-modules]" >&2; exit 2 ;;
  esac
done
[ -f "$root/dist/src/cli/sealroom.js" ] || { echo "build first: npm run build" >&2; exit 1; }
[ -f "$root/dist/kiosk-ui/index.html" ] || { echo "build the kiosk UI first: node scripts/build-kiosk.mjs" >&2; exit 1; }

version="$(node -p "require('$root/package.json').version")"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
lib="$stage/usr/lib/sealroom"
mkdir -p "$lib" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/lib/udev/rules.d" \
  "$stage/etc/default" "$stage/usr/share/doc/sealroom" "$stage/DEBIAN"

cp "$root/package.json" "$lib/"
cp -r "$root/dist" "$lib/dist"
rm -rf "$lib/dist/deb" "$lib/dist/test" "$lib/dist/scripts"
find "$lib/dist" -name '*.test.js' -delete -o -name '*.test.js.map' -delete
[ -d "$root/pipelines" ] && cp -r "$root/pipelines" "$lib/pipelines"
if [ "$with_modules" = 1 ]; then
  cp -r "$root/node_modules" "$lib/node_modules"
  (cd "$lib" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
chmod 0755 "$lib/dist/src/cli/sealroom.js"
ln -s ../lib/sealroom/dist/src/cli/sealroom.js "$stage/usr/bin/sealroom"

sys="$root/device/system"
install -m 0644 "$sys/sealroom-daemon.service" "$sys/sealroom-kiosk.service" "$stage/lib/systemd/system/"
install -m 0644 "$sys/60-sealroom-hid.rules" "$stage/lib/udev/rules.d/"
install -m 0644 "$sys/sealroom.default" "$stage/etc/default/sealroom"
for doc in deployment.md kiosk.md hid.md; do
  [ -f "$root/docs/$doc" ] && install -m 0644 "$root/docs/$doc" "$stage/usr/share/doc/sealroom/"
done
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" "$sys/debian/control" > "$stage/DEBIAN/control"
echo "Installed-Size: $(du -sk "$stage" | cut -f1)" >> "$stage/DEBIAN/control"
install -m 0755 "$sys/debian/postinst" "$sys/debian/prerm" "$sys/debian/postrm" "$stage/DEBIAN/"
install -m 0644 "$sys/debian/conffiles" "$stage/DEBIAN/"

mkdir -p "$out"
deb="$out/sealroom_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"

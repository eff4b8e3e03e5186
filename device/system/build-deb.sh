#!/usr/bin/env bash
# Builds the sealroom .deb from a built tree (npm run build + node scripts/build-kiosk.mjs):
#   device/system/build-deb.sh [--out DIR] [--without-node-modules] [--update-root FILE]
# Layout (A/B slots of docs/updates.md, the update root being /usr/lib/sealroom):
#   /usr/lib/sealroom/slots/a/{sealroom-release.json,package.json,dist,node_modules,pipelines}
#   /usr/lib/sealroom/slots/b/            (empty: the first over-the-air update goes there)
#   /usr/lib/sealroom/current -> slots/a  (the updater switches it; postinst writes update-state.json)
#   /usr/lib/sealroom/boot/               the boot check of ExecStartPre, outside the slots (stable)
#   /usr/bin/sealroom -> ../lib/sealroom/current/dist/src/cli/sealroom.js
# plus /lib/systemd/system/*.service, /lib/udev/rules.d/60-sealroom-hid.rules, /etc/default/sealroom,
# and with --update-root the release repository's root.json as /etc/sealroom/update-root.json.
# node_modules are the production dependencies with their native builds (node-hid's prebuilt,
# better-sqlite3 and gstreamer-superficial compiled by scripts/setup.sh), so build on the target
# Debian release and architecture.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/dist/deb"
with_modules=1
update_root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --without-node-modules) with_modules=0; shift ;;
    --update-root) update_root="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--without-node-modules] [--update-root FILE]" >&2; exit 2 ;;
  esac
done
[ -f "$root/dist/src/cli/sealroom.js" ] || { echo "build first: npm run build" >&2; exit 1; }
boot_modules="boot-check updater slots durable-fs health-gate"
for m in $boot_modules; do
  [ -f "$root/dist/device/update/$m.js" ] || { echo "build first: npm run build (dist/device/update/$m.js)" >&2; exit 1; }
done
[ -f "$root/dist/kiosk-ui/index.html" ] || { echo "build the kiosk UI first: node scripts/build-kiosk.mjs" >&2; exit 1; }

version="$(node -p "require('$root/package.json').version")"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
top="$stage/usr/lib/sealroom"
lib="$top/slots/a"
mkdir -p "$lib" "$top/slots/b" "$top/boot" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/lib/udev/rules.d" \
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
# The slot's release manifest, as an over-the-air bundle has it (src/update/bundle.ts).
files="$(cd "$lib" && find . -type f -o -type l | wc -l)"
node -e 'process.stdout.write(JSON.stringify({name:"sealroom",version:process.argv[1],arch:process.argv[2],node:">=20",files:Number(process.argv[3])}))' \
  "$version" "$(node -p 'process.arch === "arm64" ? "arm64" : "x64"')" "$files" > "$lib/sealroom-release.json"
ln -s slots/a "$top/current"
ln -s ../lib/sealroom/current/dist/src/cli/sealroom.js "$stage/usr/bin/sealroom"
# The boot check runs from here, not from a slot: a broken version cannot break its own rollback.
for m in $boot_modules; do install -m 0644 "$root/dist/device/update/$m.js" "$top/boot/"; done
printf '{"type":"module","private":true}\n' > "$top/boot/package.json"
if [ -n "$update_root" ]; then
  mkdir -p "$stage/etc/sealroom"
  install -m 0644 "$update_root" "$stage/etc/sealroom/update-root.json"
fi

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
if [ -n "$update_root" ]; then echo /etc/sealroom/update-root.json >> "$stage/DEBIAN/conffiles"; fi

mkdir -p "$out"
deb="$out/sealroom_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"

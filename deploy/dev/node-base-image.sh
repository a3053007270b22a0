#!/usr/bin/env bash
# Assembles a Node base image without a registry, from this machine's own Node:
#   entry-node:local   /usr/local/bin/node and npm, glibc and the libraries `ldd node` lists, busybox
#                      for /bin/sh (npm scripts and RUN lines need one), the CA bundle, and a
#                      `node` user (uid 1000), laid out like the official node:*-slim images.
# deploy/Dockerfile then builds from it:
#   docker build -f deploy/Dockerfile --build-arg NODE_IMAGE=entry-node:local -t entry-broker .
# Usage: node-base-image.sh [--force] [TAG]
set -euo pipefail
force=""
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
tag=${1:-entry-node:local}
if [[ -z "$force" ]] && docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
command -v busybox >/dev/null || { echo "node-base-image: busybox-static is not installed" >&2; exit 1; }

node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"

mkdir -p "$root"/{bin,usr/bin,usr/local/bin,usr/local/lib/node_modules,etc/ssl/certs,tmp,root,home/node,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
# Scripts start with #!/usr/bin/env node.
ln -s ../../bin/busybox "$root/usr/bin/env"
cp "$node_bin" "$root/usr/local/bin/node"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
ldd "$node_bin" | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# The rest of glibc (librt, libresolv, NSS modules…): native npm modules (vite's rolldown,
# for one) link against more of it than node does.
dpkg -L libc6 | grep -E '^/lib/[^/]+/[^/]+\.so(\.[0-9]+)*$' | while read -r lib; do
  [[ -e "$root$lib" ]] && continue
  mkdir -p "$root$(dirname "$lib")"
  cp -a "$lib" "$root$lib"
done
# The machine's CA bundle: npm and Node reach the registry and JWKS URLs over TLS with it.
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
node:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$root/home/node"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"

tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  -c 'ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt' \
  -c 'CMD ["node"]' - "$tag" >/dev/null
echo "node-base-image: built $tag from $node_bin ($(node --version))"

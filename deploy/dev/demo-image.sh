#!/usr/bin/env bash
# Builds the offline demo images with `docker import` (no registry needed):
#   entry-demo:latest   busybox + bash (+ the libraries ldd lists), like a typical app image
#   entry-demo:nobash   busybox only, for the /bin/sh fallback
#   entry-demo:nosh     the busybox binary alone: no sh, no kill (for process clean-up without a shell)
# Usage: demo-image.sh [--force]
set -euo pipefail
force=${1:-}
# Bump when the images change, so machines with an older build rebuild them.
VERSION=2
have() { [[ "$(docker image inspect -f '{{index .Config.Labels "entry.demo-version"}}' "$1" 2>/dev/null)" == "$VERSION" ]]; }
if [[ "$force" != "--force" ]] && have entry-demo:latest && have entry-demo:nobash && have entry-demo:nosh; then
  exit 0
fi
command -v busybox >/dev/null || { echo "demo-image: busybox-static is not installed" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make_base() {
  local root=$1
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,home/app,var/log}
  chmod 1777 "$root/tmp"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
  done
  cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
  cat > "$root/etc/group" <<'G'
root:x:0:
app:x:1000:
nogroup:x:65534:
G
  chown 1000:1000 "$root/home/app"
}

# Image with bash.
make_base "$work/full"
cp /bin/bash "$work/full/bin/bash"
ldd /bin/bash | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$work/full$(dirname "$lib")"
  cp -L "$lib" "$work/full$lib"
done
# Terminal descriptions, so bash's line editing and full-screen programs know the terminal.
for t in xterm xterm-256color xterm-color vt100 screen screen-256color tmux tmux-256color linux; do
  for base in /lib/terminfo /usr/share/terminfo; do
    f="$base/${t:0:1}/$t"
    if [[ -f "$f" ]]; then
      mkdir -p "$work/full/usr/share/terminfo/${t:0:1}"
      cp "$f" "$work/full/usr/share/terminfo/${t:0:1}/$t"
    fi
  done
done
tar -C "$work/full" -c . | docker import -c "LABEL entry.demo-version=$VERSION" \
  -c 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM; while :; do sleep 3600 & wait $!; done"]' \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'WORKDIR /root' - entry-demo:latest >/dev/null

# Image without bash.
make_base "$work/small"
tar -C "$work/small" -c . | docker import -c "LABEL entry.demo-version=$VERSION" \
  -c 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM; while :; do sleep 3600 & wait $!; done"]' \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'WORKDIR /root' - entry-demo:nobash >/dev/null
# Image without any shell: only the busybox binary, run by its full path.
mkdir -p "$work/nosh/bin" "$work/nosh/tmp" "$work/nosh/proc" "$work/nosh/dev" "$work/nosh/sys"
cp "$(command -v busybox)" "$work/nosh/bin/busybox"
tar -C "$work/nosh" -c . | docker import -c "LABEL entry.demo-version=$VERSION" \
  -c 'CMD ["/bin/busybox","sleep","2147483647"]' - entry-demo:nosh >/dev/null
echo "demo-image: built entry-demo:latest, entry-demo:nobash and entry-demo:nosh"

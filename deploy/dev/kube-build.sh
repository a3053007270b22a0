#!/usr/bin/env bash
# Builds the Kubernetes server binaries for the dev/test cluster from Debian's own source package
# (no registry or download other than Debian's archive), the way debian/rules builds kubectl, and
# caches them once per machine by version. A second run finds the cache and does nothing.
#   kube-build.sh            build if missing, then print the bin directory
#   kube-build.sh --print    print the bin directory (exit 1 when it is not built yet)
# Env: ENTRY_KUBE_CACHE (default /var/cache/entry), ENTRY_KUBE_JOBS (parallel Go jobs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

KUBE_VERSION=1.20.2
cache=${ENTRY_KUBE_CACHE:-/var/cache/entry}/kubernetes-$KUBE_VERSION
bin=$cache/bin
components=(kube-apiserver kubelet kube-scheduler kube-controller-manager kubectl)

# The stamp is written last, so an interrupted build is never taken for a finished one. Its
# content changes when the way of building does, so caches from an older recipe are rebuilt.
STAMP="entry kube-build 2 (reflect2 1.0.2)"
built() { [[ "$(cat "$bin/.complete" 2>/dev/null)" == "$STAMP" ]]; }
if built; then echo "$bin"; exit 0; fi
if [[ "${1:-}" == "--print" ]]; then exit 1; fi

as_root mkdir -p "$cache"
# One build at a time per machine (two test runs starting together would both build).
exec 9>"$cache/.lock"
flock 9
if built; then echo "$bin"; exit 0; fi

started=$(date +%s)
# deb-src for bookworm main, in a file of our own so the machine's own sources stay untouched,
# only while the source is fetched: removed on any exit, with the lists refreshed so apt forgets
# it. (A file of that name is always ours: versions before this one left it behind.)
srclist=/etc/apt/sources.list.d/entry-bookworm-src.sources
remove_srclist() {
  if [[ -f $srclist ]]; then
    as_root rm -f "$srclist"
    as_root apt-get update -qq || log "apt-get update failed after removing $srclist"
  fi
}
trap remove_srclist EXIT
exit_on_signals
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    || ! apt-get source --print-uris kubernetes >/dev/null 2>&1; then
  if [[ ! -f "$srclist" ]]; then
    log "adding a deb-src entry for bookworm main ($srclist)"
    as_root tee "$srclist" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  as_root apt-get update -qq
fi
# golang-go, rsync and jq are what the Kubernetes Makefile needs; dpkg-dev unpacks the source.
ensure_packages golang-go rsync jq dpkg-dev etcd-server golang-github-modern-go-reflect2-dev

work=$cache/build
as_root rm -rf "$work"
mkdir -p "$work"
log "fetching Debian's kubernetes source (log: $work/build.log)"
(cd "$work" && apt-get source -qq kubernetes) >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log" >&2; exit 1; }
remove_srclist
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
[[ -d "$src/vendor" ]] || { log "the kubernetes source has no vendor/ tree"; exit 1; }
grep -q "^kubernetes (.*${KUBE_VERSION}" "$src/debian/changelog" \
  || { log "Debian's kubernetes source is not $KUBE_VERSION: $(head -1 "$src/debian/changelog")"; exit 1; }

# Kubernetes 1.20 vendors reflect2 1.0.1, which reaches into Go's map iterator as it was before
# Go 1.18: built with Debian's Go 1.19 the apiserver segfaults in reflect.mapiterinit on the first
# requests. reflect2 1.0.2 (same API) is the upstream fix, and Debian packages it.
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
if ! grep -q 'modern-go/reflect2 v1.0.1' "$src/vendor/modules.txt"; then
  log "the kubernetes source no longer vendors reflect2 1.0.1: check whether the reflect2 swap is still needed"; exit 1
fi
rm -f "$src"/vendor/github.com/modern-go/reflect2/*.go "$src"/vendor/github.com/modern-go/reflect2/*.s
cp "$reflect2"/*.go "$reflect2"/*.s "$src/vendor/github.com/modern-go/reflect2/"
rm -f "$src"/vendor/github.com/modern-go/reflect2/*_test.go

# As debian/rules: a GOPATH whose src/k8s.io/kubernetes is the source tree, cgo off, version
# stamped explicitly because the unpacked source has no git metadata.
mkdir -p "$work/gopath/src/k8s.io"
ln -s "$src" "$work/gopath/src/k8s.io/kubernetes"
log "building ${components[*]} with $(go version | cut -d' ' -f3) (about ten minutes on 2 cores)"
(
  cd "$work/gopath/src/k8s.io/kubernetes"
  export GOPATH=$work/gopath CGO_ENABLED=0 GOCACHE=$work/gocache
  export KUBE_GIT_VERSION=v$KUBE_VERSION KUBE_GIT_TREE_STATE=clean KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
  export KUBE_BUILD_PLATFORMS=linux/amd64
  [[ -n "${ENTRY_KUBE_JOBS:-}" ]] && export GOMAXPROCS=$ENTRY_KUBE_JOBS
  make WHAT="$(printf 'cmd/%s ' "${components[@]}")"
) >>"$work/build.log" 2>&1 || { log "build failed; last lines of $work/build.log:"; tail -30 "$work/build.log" >&2; exit 1; }

out=$src/_output/local/bin/linux/amd64
[[ -d "$out" ]] || out=$src/_output/bin
mkdir -p "$bin.new"
for c in "${components[@]}"; do install -m 0755 "$out/$c" "$bin.new/$c"; done
echo "$STAMP" >"$bin.new/.complete"
rm -rf "$bin" && mv "$bin.new" "$bin"
cp "$work/build.log" "$cache/build.log"
rm -rf "$work"
log "built in $(( $(date +%s) - started )) s: $bin"
echo "$bin"
